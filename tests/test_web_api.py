"""The operator JSON API under /api, in process: every route, bad input, sizes."""

from __future__ import annotations

from pathlib import Path

from conftest import Captured, Cli
from subscriber_web import web_app
from web_operator import wait_for_status, with_stories

from digest.core.status import EditionStatus

STORY = {"headline": "A headline", "summary": "A summary.", "bullets": ["one", "two"]}


def test_api_stories_import_and_list(ready: Cli) -> None:
    with web_app(ready) as web:
        c = web.client
        one = c.post("/api/stories", json=STORY)
        again = c.post("/api/stories", json=STORY)
        many = c.post("/api/stories", json=[{**STORY, "headline": f"H{i}"} for i in range(3)])
        listed = c.get("/api/stories").json()
        new = c.get("/api/stories?new=true").json()
    assert one.status_code == 201 and one.json() == {"added": [1], "updated": [], "duplicates": 0}
    assert again.json()["duplicates"] == 1
    assert len(many.json()["added"]) == 3
    assert [s["headline"] for s in listed] == ["A headline", "H0", "H1", "H2"]
    assert len(new) == 4 and listed[0]["bullets"] == ["one", "two"]


def test_api_stories_bad_input_is_a_400_naming_the_problem(ready: Cli) -> None:
    with web_app(ready) as web:
        c = web.client
        cases = {
            "unknown key": c.post("/api/stories", json={**STORY, "colour": "red"}),
            "missing": c.post("/api/stories", json={"headline": "x"}),
            "bad url": c.post("/api/stories", json={**STORY, "url": "javascript:alert(1)"}),
            "line break": c.post("/api/stories", json={**STORY, "headline": "a\nb"}),
            "bad JSON": c.post(
                "/api/stories", content=b"{nope", headers={"Content-Type": "application/json"}
            ),
        }
        stored = c.get("/api/stories").json()
    for why, response in cases.items():
        assert response.status_code == 400, why
        assert response.json()["error"], why
    assert "absolute http(s) URL" in cases["bad url"].json()["error"]
    assert stored == []


def test_api_rejects_form_posts_and_oversized_bodies(ready: Cli) -> None:
    with web_app(ready, web_max_body_bytes="2048") as web:
        c = web.client
        form = c.post("/api/stories", data={"headline": "x", "summary": "y"})
        big = c.post("/api/stories", json={**STORY, "summary": "x" * 5000})
        big_page = c.post("/editions", content=b"csrf=" + b"x" * 5000)
    assert form.status_code == 415
    assert big.status_code == 413 and "too large" in big.json()["error"]
    assert big_page.status_code == 413 and "text/html" in big_page.headers["content-type"]


def test_api_subscribers_add_update_erase(ready: Cli) -> None:
    with web_app(ready) as web:
        c = web.client
        added = c.post("/api/subscribers", json={"email": "ada@example.com", "name": "Ada"})
        sid = added.json()["id"]
        twice = c.post("/api/subscribers", json={"email": "ada@example.com"})
        bad = c.post("/api/subscribers", json={"email": "not an address"})
        renamed = c.patch(f"/api/subscribers/{sid}", json={"name": "Ada Lovelace"})
        left = c.patch(f"/api/subscribers/{sid}", json={"status": "unsubscribed"})
        back = c.patch(f"/api/subscribers/{sid}", json={"status": "active"})
        listed = c.get("/api/subscribers").json()
        erased = c.delete(f"/api/subscribers/{sid}")
        gone = c.delete(f"/api/subscribers/{sid}")
        after = c.get("/api/subscribers").json()
    assert added.status_code == 201 and added.json()["status"] == "active"
    assert twice.status_code == 400 and "already a subscriber" in twice.json()["error"]
    assert bad.status_code == 400
    assert renamed.json()["name"] == "Ada Lovelace"
    assert left.json()["status"] == "unsubscribed"
    assert back.status_code == 400  # unsubscribed -> active needs a new opt-in
    assert [s["email"] for s in listed] == ["ada@example.com"]
    assert erased.status_code == 204 and gone.status_code == 404 and after == []


def test_api_subscribers_csv_import(ready: Cli) -> None:
    csv = b"email,name\nbob@example.com,Bob\ncy@example.com,Cy\nbob@example.com,Bob\n"
    with web_app(ready) as web:
        c = web.client
        report = c.post(
            "/api/subscribers/import", content=csv, headers={"Content-Type": "text/csv"}
        )
        bad = c.post(
            "/api/subscribers/import",
            content=b"email\nnope\n",
            headers={"Content-Type": "text/csv"},
        )
        as_json = c.post("/api/subscribers/import", json={"email": "x@example.com"})
        listed = c.get("/api/subscribers?search=bob").json()
    assert report.json() == {
        "added": 2,
        "already_known": [],
        "repeated_in_file": ["bob@example.com"],
        "suppressed": [],
    }
    assert bad.status_code == 400 and as_json.status_code == 415
    assert [s["name"] for s in listed] == ["Bob"]


def test_api_editions_build_preview_send_status(ready: Cli, captured: Captured) -> None:
    with_stories(ready, "one@example.com")
    with web_app(ready) as web:
        c = web.client
        next_preview = c.get("/api/preview/next").json()
        built = c.post("/api/editions")
        nothing = c.post("/api/editions")
        preview = c.get("/api/editions/1/preview").json()
        sent = c.post("/api/editions/1/send", json={})
        waiting = c.get("/api/editions/1").json()
        assert captured.envelopes == []  # the web app only opens the edition
        ready("worker", "--once")
        assert wait_for_status(web.factory, 1, EditionStatus.FINISHED) == EditionStatus.FINISHED
        status = c.get("/api/editions/1").json()
        listed = c.get("/api/editions").json()
        again = c.post("/api/editions/1/send")
    assert "US, Israel Show Signs" in next_preview["subject"]
    assert next_preview["gmail_clip_bytes"] == 102 * 1024 and not next_preview["clipped"]
    assert built.status_code == 201 and built.json()["status"] == "draft"
    assert nothing.status_code == 409
    assert preview["problems"] == [] and "US, Israel Show Signs" in preview["html"]
    assert sent.status_code == 202 and sent.json()["status"] == "running"
    assert waiting["waiting_for_worker"] and "waiting for a worker" in waiting["waiting"]
    assert status["deliveries"]["sent"] == 1 and status["status"] == "finished"
    assert not status["waiting_for_worker"] and status["waiting"] is None
    assert listed[0]["deliveries"] == {"sent": 1}
    assert again.status_code == 409
    assert len(captured.envelopes) == 1


def test_api_editions_pause_resume_cancel(ready: Cli) -> None:
    with_stories(ready)
    ready("edition", "build")
    with web_app(ready) as web:
        c = web.client
        pause_draft = c.post("/api/editions/1/pause")
        resume_draft = c.post("/api/editions/1/resume")
        cancelled = c.post("/api/editions/1/cancel")
        twice = c.post("/api/editions/1/cancel")
        send_cancelled = c.post("/api/editions/1/send")
    assert pause_draft.status_code == 409 and "not running" in pause_draft.json()["error"]
    assert resume_draft.status_code == 409
    assert cancelled.json()["status"] == "cancelled"
    assert twice.status_code == 409 and send_cancelled.status_code == 409


def test_api_unknown_and_malformed_ids(ready: Cli) -> None:
    with web_app(ready) as web:
        c = web.client
        for method, url in (
            ("GET", "/api/editions/7"),
            ("GET", "/api/editions/7/preview"),
            ("POST", "/api/editions/7/send"),
            ("POST", "/api/editions/7/pause"),
            ("PATCH", "/api/subscribers/7"),
            ("DELETE", "/api/subscribers/7"),
        ):
            kwargs = {"json": {}} if method == "PATCH" else {}
            response = c.request(method, url, **kwargs)  # type: ignore[arg-type]
            assert response.status_code == 404, url
            assert response.json()["error"], url
        assert c.get("/api/editions/abc").status_code == 400
        assert c.get("/api/editions/99999999999999999999").status_code == 400
        assert c.get("/api/preview/next").status_code == 404  # no new stories


def test_api_openapi_document_describes_the_routes(ready: Cli) -> None:
    with web_app(ready) as web:
        doc = web.client.get("/api/openapi.json").json()
    paths = set(doc["paths"])
    assert {
        "/api/stories",
        "/api/subscribers",
        "/api/subscribers/{subscriber_id}",
        "/api/subscribers/import",
        "/api/editions",
        "/api/editions/{edition_id}",
        "/api/editions/{edition_id}/preview",
        "/api/editions/{edition_id}/send",
        "/api/editions/{edition_id}/pause",
        "/api/editions/{edition_id}/resume",
        "/api/editions/{edition_id}/cancel",
        "/api/preview/next",
    } <= paths
    assert not any(p.startswith(("/editions", "/preview", "/archive")) for p in paths)  # pages
    assert "StoryIn" in doc["components"]["schemas"]


def test_metrics_count_stories_and_editions(ready: Cli) -> None:
    with_stories(ready)
    with web_app(ready) as web:
        before = web.client.get("/metrics").text
        web.client.post("/api/editions")
        after = web.client.get("/metrics")
    assert "digest_stories_total 1\n" in before and "digest_stories_new 1\n" in before
    assert "digest_stories_new 0\n" in after.text
    assert 'digest_editions{status="draft"} 1' in after.text
    assert "digest_last_successful_send_timestamp_seconds 0.0" in after.text
    assert after.headers["content-type"].startswith("text/plain; version=0.0.4")


def test_api_send_refuses_an_edition_that_fails_the_check_unless_forced(
    ready: Cli, captured: Captured, tmp_path: Path
) -> None:
    from test_check import BAD_MJML, with_templates

    with_templates(with_stories(ready, "reader@example.com"), tmp_path, digest_mjml=BAD_MJML)
    with web_app(ready) as web:
        c = web.client
        c.post("/api/editions")
        refused = c.post("/api/editions/1/send", json={})
        draft = c.get("/api/editions/1").json()["status"]
        forced = c.post("/api/editions/1/send", json={"force": True})
        ready("worker", "--once")
        assert wait_for_status(web.factory, 1, EditionStatus.FINISHED) == EditionStatus.FINISHED
    assert refused.status_code in (400, 409, 422)
    assert "link is not http(s): ftp://example.org/file" in refused.text
    assert draft == "draft"  # a refused send opens no ledger
    assert forced.status_code == 202
    assert len(captured.envelopes) == 1
