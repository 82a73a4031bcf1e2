"""The operator web app in process: previews, editions, archive, metrics, access, errors."""

from __future__ import annotations

from email import message_from_bytes, policy
from xml.etree import ElementTree as ET

from conftest import Captured, Cli
from subscriber_web import web_app
from web_operator import SCRIPT_STORY, csrf, wait_for_status, with_stories

from digest.core.status import EditionStatus
from subscribers.tokens import make_token

HEADLINE = "US, Israel Show Signs"
BEARER = {"Authorization": "Bearer s3cret"}


def test_preview_next_shows_the_sent_html_in_a_sandboxed_frame(ready: Cli) -> None:
    with_stories(ready)
    with web_app(ready) as web:
        page = web.client.get("/preview/next")
        frame = web.client.get("/preview/next.html")
    assert page.status_code == 200
    assert '<iframe id="email-frame"' in page.text and 'sandbox="allow-popups' in page.text
    assert "allow-scripts" not in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    assert HEADLINE in page.text  # subject and preheader as the inbox shows them
    assert "of Gmail's 102 KB clipping limit" in page.text
    assert "Pre-send check" in page.text
    assert HEADLINE in frame.text and "<html" in frame.text
    assert "sandbox" in frame.headers["Content-Security-Policy"]


def test_preview_eml_download_is_the_message_subscribers_get(ready: Cli) -> None:
    with_stories(ready)
    with web_app(ready) as web:
        eml = web.client.get("/preview/next.eml")
    assert eml.headers["content-disposition"] == 'attachment; filename="next.eml"'
    msg = message_from_bytes(eml.content, policy=policy.default)
    assert HEADLINE in str(msg["Subject"])
    assert "<http://127.0.0.1:8000/unsubscribe/" in str(msg["List-Unsubscribe"])
    assert msg["List-Unsubscribe-Post"] is None  # one-click only with an https base URL


def test_preview_as_subscriber_fills_in_their_address_and_links(ready: Cli) -> None:
    with_stories(ready)
    ready("subscribers", "add", "ada@example.com", "--name", "Ada Lovelace")
    with web_app(ready) as web:
        sub = web.subscriber("ada@example.com")
        page = web.client.get(f"/preview/next?subscriber={sub.id}")
        html = web.client.get(f"/preview/next.html?subscriber={sub.id}").text
        token = make_token(web.settings.signing_key(), "unsubscribe", sub.id)
        missing = web.client.get("/preview/next?subscriber=999")
    assert "To: Ada Lovelace &lt;ada@example.com&gt;" in page.text
    assert f"/unsubscribe/{token}" in html
    assert missing.status_code == 404


def test_preview_dark_variant_applies_the_dark_css(ready: Cli) -> None:
    with_stories(ready)
    with web_app(ready) as web:
        light = web.client.get("/preview/next.html").text
        dark = web.client.get("/preview/next.html?scheme=dark").text
    # The light view stays light under a dark operating system: its dark CSS never applies.
    assert "prefers-color-scheme: dark" not in light and "@media not all" in light
    assert 'name="color-scheme" content="light"' in light
    assert "prefers-color-scheme: dark" not in dark and "@media all" in dark


def test_preview_of_an_edition_and_unknown_ids(ready: Cli) -> None:
    with_stories(ready)
    ready("edition", "build")
    with web_app(ready) as web:
        assert HEADLINE in web.client.get("/editions/1/preview").text
        assert web.client.get("/editions/1/preview.eml").status_code == 200
        assert web.client.get("/editions/42/preview").status_code == 404
        assert web.client.get("/editions/42/preview.html").status_code == 404
        assert web.client.get("/editions/nope/preview").status_code == 400
        # Everything is in edition 1: the next edition has nothing in it, an empty state.
        empty = web.client.get("/preview/next")
        assert empty.status_code == 200 and "No new stories yet" in empty.text
        assert web.client.get("/preview/next.html").status_code == 404


def test_operator_routes_need_the_token_when_one_is_set(ready: Cli) -> None:
    with_stories(ready)
    with web_app(ready, admin_token="s3cret") as web:
        c = web.client
        for url in ("/preview/next", "/preview/next.html", "/editions", "/metrics"):
            assert c.get(url).status_code == 401, url
            assert c.get(url, headers=BEARER).status_code == 200, url
        api = c.get("/api/stories")
        assert api.status_code == 401 and api.json() == {
            "error": "operator login required (DIGEST_ADMIN_TOKEN)"
        }
        assert c.get("/api/stories", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/stories", headers=BEARER).status_code == 200
        assert c.get("/archive").status_code == 200  # public
        assert c.get("/subscribe").status_code == 200  # public
        assert "Open access" not in c.get("/editions", headers=BEARER).text


def test_login_form_sets_a_session_that_opens_operator_pages(ready: Cli) -> None:
    with_stories(ready)
    with web_app(ready, admin_token="s3cret") as web:
        c = web.client
        token = csrf(c, "/login")
        wrong = c.post("/login", data={"csrf": token, "token": "guess"})
        assert wrong.status_code == 401 and "not the admin token" in wrong.text
        assert c.get("/editions").status_code == 401
        ok = c.post("/login", data={"csrf": token, "token": "s3cret"}, follow_redirects=False)
        assert ok.status_code == 303
        assert c.get("/editions").status_code == 200
        assert c.get("/api/editions").status_code == 200
        c.post("/logout", data={"csrf": csrf(c)})
        assert c.get("/editions").status_code == 401


def test_operator_pages_say_they_are_open_without_a_token(ready: Cli) -> None:
    with web_app(ready) as web:
        page = web.client.get("/editions")
    assert page.status_code == 200 and "Open access" in page.text


def test_editions_post_without_a_valid_csrf_token_changes_nothing(ready: Cli) -> None:
    with_stories(ready)
    with web_app(ready) as web:
        c = web.client
        assert c.post("/editions").status_code == 403
        assert c.post("/editions", data={"csrf": "forged"}).status_code == 403
        other = csrf(c)
        c.cookies.clear()  # a token from another browser's cookie does not count
        assert c.post("/editions", data={"csrf": other}).status_code == 403
        assert c.get("/api/editions").json() == []


def test_editions_send_from_the_web_is_delivered_by_a_worker(
    ready: Cli, captured: Captured
) -> None:
    with_stories(ready, "one@example.com", "two@example.com")
    with web_app(ready) as web:
        c = web.client
        built = c.post("/editions", data={"csrf": csrf(c)}, follow_redirects=False)
        assert built.headers["location"] == "/editions/1"
        sent = c.post("/editions/1/send", data={"csrf": csrf(c)}, follow_redirects=False)
        assert sent.status_code == 303 and sent.headers["location"] == "/editions/1"
        waiting = c.get("/editions/1").text
        assert captured.envelopes == []  # the web app only opens the edition
        ready("worker", "--once")
        assert wait_for_status(web.factory, 1, EditionStatus.FINISHED) == EditionStatus.FINISHED
        detail = c.get("/editions/1").text
        listing = c.get("/editions").text
        archive = c.get("/archive").text
        web_version = c.get("/archive/1")
        feed = c.get("/archive/feed.xml")
        metrics = c.get("/metrics").text
    assert sorted(rcpt for _, (rcpt,), _ in captured.envelopes) == [
        "one@example.com",
        "two@example.com",
    ]
    assert "Waiting for a worker" in waiting and '<meta http-equiv="refresh"' in waiting
    assert "2 of 2 done" in detail and '<meta http-equiv="refresh"' not in detail
    assert "Waiting for a worker" not in detail
    assert '<td class="status">finished</td>' in listing
    assert 'href="/archive/1"' in archive
    assert (
        HEADLINE in web_version.text and "sandbox" in web_version.headers["Content-Security-Policy"]
    )
    assert "/unsubscribe/" not in web_version.text  # nobody's personal link
    entries = ET.fromstring(feed.content).findall("{http://www.w3.org/2005/Atom}entry")
    assert len(entries) == 1 and feed.headers["content-type"] == "application/atom+xml"
    assert 'digest_editions{status="finished"} 1' in metrics
    assert 'digest_deliveries{state="sent"} 2' in metrics
    last = next(line for line in metrics.splitlines() if line.startswith("digest_last_successful"))
    assert float(last.split()[1]) > 1_700_000_000


def test_editions_view_in_browser_link_opens_the_archive_page(
    ready: Cli, captured: Captured
) -> None:
    with_stories(ready, "one@example.com")
    ready("send", "--now")
    text = captured.messages()[0].get_body(("plain",))
    assert text is not None
    link = next(
        line.split(": ", 1)[1]
        for line in text.get_content().splitlines()
        if line.startswith("View in browser")
    )
    with web_app(ready) as web:
        path = link.removeprefix(web.settings.base_url)
        assert path == "/archive/1"
        assert HEADLINE in web.client.get(path).text


def test_editions_test_send_reaches_one_address_and_records_nothing(
    ready: Cli, captured: Captured
) -> None:
    with_stories(ready)
    ready("edition", "build")
    with web_app(ready) as web:
        c = web.client
        page = c.post("/editions/1/test", data={"csrf": csrf(c), "email": "me@example.com"})
        bad = c.post("/editions/1/test", data={"csrf": csrf(c), "email": "not an address"})
        status = c.get("/api/editions/1").json()
    assert page.status_code == 200 and "sent to me@example.com" in page.text
    assert [rcpt for _, rcpt, _ in captured.envelopes] == [["me@example.com"]]
    assert bad.status_code == 400
    assert status["status"] == "draft" and sum(status["deliveries"].values()) == 0


def test_editions_cancel_and_state_conflicts(ready: Cli) -> None:
    with_stories(ready)
    ready("edition", "build")
    with web_app(ready) as web:
        c = web.client
        paused = c.post("/editions/1/pause", data={"csrf": csrf(c)})
        cancelled = c.post("/editions/1/cancel", data={"csrf": csrf(c)}, follow_redirects=False)
        unknown = c.post("/editions/1/explode", data={"csrf": csrf(c)})
        missing = c.post("/editions/9/cancel", data={"csrf": csrf(c)})
        archive = c.get("/archive/1")
    assert paused.status_code == 409 and "not running" in paused.text
    assert cancelled.status_code == 303
    assert unknown.status_code == 404 and missing.status_code == 404
    assert archive.status_code == 404  # never sent: not public


def test_archive_hides_drafts(ready: Cli) -> None:
    with_stories(ready)
    ready("edition", "build")
    with web_app(ready) as web:
        assert web.client.get("/archive/1").status_code == 404
        assert "No editions have been sent yet" in web.client.get("/archive").text
        feed = ET.fromstring(web.client.get("/archive/feed.xml").content)
    assert feed.findall("{http://www.w3.org/2005/Atom}entry") == []


def test_pages_carry_security_headers(ready: Cli) -> None:
    with web_app(ready) as web:
        for url in ("/editions", "/archive", "/login", "/healthz", "/api/editions"):
            response = web.client.get(url)
            assert response.headers["X-Content-Type-Options"] == "nosniff", url
            assert response.headers["Referrer-Policy"] == "same-origin", url
            assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"], url


def test_story_markup_is_text_in_the_preview(ready: Cli, tmp_path: object) -> None:
    with web_app(ready) as web:
        assert web.client.post("/api/stories", json=SCRIPT_STORY).status_code == 201
        page = web.client.get("/preview/next").text
        html = web.client.get("/preview/next.html").text
    for text in (page, html):
        assert "<script>window.__pwned" not in text
        assert "<img src=x onerror" not in text
    assert "&lt;script&gt;" in html
