"""The edition editor on the web: subject, intro, order, removed stories, deleted drafts,
cancelled editions giving their stories back, and the send confirmation."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path

from conftest import Captured, Cli
from subscriber_web import web_app
from web_operator import csrf

from digest.core.models import Edition, EditionStory
from digest.editions import assemble

STORIES = [
    {"headline": "Alpha rail line opens", "summary": "Trains run north."},
    {"headline": "Bravo bridge repaired", "summary": "Cars cross again."},
    {"headline": "Charlie library extends hours", "summary": "Open until ten."},
]


def with_three_stories(cli: Cli, tmp_path: Path, *subscribers: str) -> Cli:
    for n, story in enumerate(STORIES):
        path = tmp_path / f"story{n}.json"
        path.write_text(json.dumps(story), encoding="utf-8")
        cli("stories", "import", str(path))
    for address in subscribers:
        cli("subscribers", "add", address)
    cli("edition", "build")
    return cli


def headlines_in(factory: object, edition_id: int) -> list[str]:
    with factory() as s:  # type: ignore[operator]
        return [story.headline for story in assemble.get(s, str(edition_id)).stories]


def new_headlines(factory: object) -> list[str]:
    with factory() as s:  # type: ignore[operator]
        return sorted(story.headline for story in assemble.new_stories(s))


def edit_form(ids: dict[str, int], order: dict[str, int], removed: tuple[str, ...] = ()) -> dict:
    fields = {f"pos-{ids[h]}": str(n) for h, n in order.items()}
    fields.update({f"remove-{ids[h]}": "1" for h in removed})
    return fields


def story_ids(factory: object, edition_id: int) -> dict[str, int]:
    with factory() as s:  # type: ignore[operator]
        return {st.headline: st.id for st in assemble.get(s, str(edition_id)).stories}


def test_editor_sets_subject_intro_order_and_removes_a_story_in_the_sent_message(
    ready: Cli, tmp_path: Path, captured: Captured
) -> None:
    with_three_stories(ready, tmp_path, "reader@example.com")
    with web_app(ready) as web:
        ids = story_ids(web.factory, 1)
        token = csrf(web.client, "/editions/1/edit")
        fields = edit_form(
            ids,
            {"Alpha rail line opens": 2, "Charlie library extends hours": 1},
            removed=("Bravo bridge repaired",),
        )
        saved = web.client.post(
            "/editions/1/edit",
            data={
                "csrf": token,
                "subject": "Weekend special\r\nBcc: x@example.com",
                "intro": "Hello **readers**. <script>alert(1)</script>",
                **fields,
            },
            follow_redirects=False,
        )
        preview = web.client.get("/editions/1/preview.html").text
        assert saved.status_code == 303
        assert headlines_in(web.factory, 1) == [
            "Charlie library extends hours",
            "Alpha rail line opens",
        ]
        assert new_headlines(web.factory) == ["Bravo bridge repaired"]
        assert "<strong>readers</strong>" in preview and "<script>alert" not in preview
        assert "Bravo bridge" not in preview
        send_page = web.client.get("/editions/1/send").text
        assert "Weekend special Bcc: x@example.com" in send_page
        sent = web.client.post(
            "/editions/1/send", data={"csrf": csrf(web.client, "/editions/1/send")}
        )
        assert sent.status_code == 200
    ready("worker", "--once")
    assert len(captured.envelopes) == 1
    msg = message_from_bytes(captured.envelopes[0][2], policy=policy.default)
    assert str(msg["Subject"]) == "Weekend special Bcc: x@example.com"
    assert msg["Bcc"] is None
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hello readers." in text  # Markdown emphasis as plain text
    assert text.index("Charlie library") < text.index("Alpha rail") and "Bravo" not in text


def test_editor_refuses_bad_input_and_leaves_the_draft_as_it_was(
    ready: Cli, tmp_path: Path
) -> None:
    with_three_stories(ready, tmp_path)
    with web_app(ready) as web:
        ids = story_ids(web.factory, 1)
        token = csrf(web.client, "/editions/1/edit")
        every = {f"remove-{i}": "1" for i in ids.values()}
        empty = web.client.post("/editions/1/edit", data={"csrf": token, **every})
        bad_pos = web.client.post(
            "/editions/1/edit", data={"csrf": token, f"pos-{ids['Alpha rail line opens']}": "x"}
        )
        long_subject = web.client.post(
            "/editions/1/edit", data={"csrf": token, "subject": "s" * 201}
        )
        no_csrf = web.client.post("/editions/1/edit", data={"subject": "sneaky"})
        missing = web.client.get("/editions/99/edit")
        with web.factory() as s:
            subject = s.get(Edition, 1).subject  # type: ignore[union-attr]
    assert empty.status_code == 400 and "delete the draft instead" in empty.text
    assert bad_pos.status_code == 400 and "not a number" in bad_pos.text
    assert long_subject.status_code == 400 and "at most 200" in long_subject.text
    assert no_csrf.status_code == 403
    assert missing.status_code == 404
    assert subject is None
    assert headlines_in(web.factory, 1) == [s["headline"] for s in reversed(STORIES)]


def test_editor_delete_draft_returns_its_stories_to_the_pool(ready: Cli, tmp_path: Path) -> None:
    with_three_stories(ready, tmp_path)
    with web_app(ready) as web:
        assert new_headlines(web.factory) == []
        deleted = web.client.post(
            "/editions/1/delete",
            data={"csrf": csrf(web.client, "/editions/1")},
            follow_redirects=False,
        )
        gone = web.client.get("/editions/1")
        listing = web.client.get("/editions").text
        waiting = new_headlines(web.factory)
    assert deleted.status_code == 303 and deleted.headers["location"] == "/editions"
    assert gone.status_code == 404
    assert "3 new stories waiting" in listing
    assert waiting == sorted(s["headline"] for s in STORIES)


def test_editor_cancelled_draft_gives_its_stories_back_and_a_sent_edition_cannot_be_edited(
    ready: Cli, tmp_path: Path
) -> None:
    with_three_stories(ready, tmp_path, "reader@example.com")
    with web_app(ready) as web:
        web.client.post("/editions/1/cancel", data={"csrf": csrf(web.client, "/editions/1")})
        waiting = new_headlines(web.factory)
        with web.factory() as s:
            placed = s.query(EditionStory).count()
    assert waiting == sorted(s["headline"] for s in STORIES) and placed == 0
    ready("send", "--now")
    with web_app(ready) as web:
        refused = web.client.get("/editions/2/edit")
        refused_post = web.client.post(
            "/editions/2/delete", data={"csrf": csrf(web.client, "/editions/2")}
        )
        page = web.client.get("/editions/2").text
    assert refused.status_code == 409 and "not a draft" in refused.text
    assert refused_post.status_code == 409
    assert "Send to subscribers" not in page and "Delete draft" not in page


def test_send_confirmation_names_the_audience_and_the_check(ready: Cli, tmp_path: Path) -> None:
    with_three_stories(ready, tmp_path, "a@example.com", "b@example.com")
    ready("subscribers", "add", "c@example.com", "--cadence", "weekly", "--topics", "rail")
    with web_app(ready) as web:
        detail = web.client.get("/editions/1").text
        page = web.client.get("/editions/1/send").text
    assert "0 of 0" not in detail and "3 active subscribers would get it" in detail
    assert "This mails <strong>3</strong> active subscribers" in page
    assert "<td>daily</td><td>2</td>" in page and "<td>weekly</td><td>1</td>" in page
    assert "<td>rail</td><td>1</td>" in page and "<td>all topics</td><td>2</td>" in page
    assert "Pre-send check" in page and 'action="/editions/1/send"' in page


def test_send_confirmation_shows_a_size_warning_without_asking_to_force(
    ready: Cli, tmp_path: Path
) -> None:
    # 'é' goes out as 6 bytes of quoted-printable: an HTML part between 90 and 102 KB.
    bullets = "".join(f"- Bullet {i} {'é' * 200}\n" for i in range(70))
    (tmp_path / "accents.txt").write_text(f"Accents\nA story.\n{bullets}", encoding="utf-8")
    ready("stories", "import", str(tmp_path / "accents.txt"))
    ready("subscribers", "add", "reader@example.com")
    ready("edition", "build")
    with web_app(ready) as web:
        page = web.client.get("/editions/1/send").text
    assert "The check found no problems." in page
    assert "1 warning, which does not stop the send:" in page
    assert "close to where Gmail clips (about 102 KB); keep it under 90 KB" in page
    assert ">Send to 1</button>" in page and "Send anyway" not in page


def test_editor_subject_and_intro_reach_every_readers_own_digest(
    ready: Cli, tmp_path: Path, captured: Captured
) -> None:
    for n, (story, tags) in enumerate(zip(STORIES, (["science"], ["arts"], []), strict=True)):
        path = tmp_path / f"story{n}.json"
        path.write_text(json.dumps({**story, "tags": tags}), encoding="utf-8")
        ready("stories", "import", str(path))
    ready("subscribers", "add", "scientist@example.com", "--topics", "science")
    ready("subscribers", "add", "everyone@example.com")
    ready("edition", "build")
    with web_app(ready) as web:
        saved = web.client.post(
            "/editions/1/edit",
            data={
                "csrf": csrf(web.client, "/editions/1/edit"),
                "subject": "Weekend special",
                "intro": "Hello **readers**.",
                **edit_form(story_ids(web.factory, 1), {}),
            },
            follow_redirects=False,
        )
        assert saved.status_code == 303
        sent = web.client.post(
            "/editions/1/send", data={"csrf": csrf(web.client, "/editions/1/send")}
        )
        assert sent.status_code == 200
    ready("worker", "--once")
    texts = {}
    for _, recipients, raw in captured.envelopes:
        msg = message_from_bytes(raw, policy=policy.default)
        assert str(msg["Subject"]) == "Weekend special"
        texts[recipients[0]] = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert sorted(texts) == ["everyone@example.com", "scientist@example.com"]
    assert all("Hello readers." in text for text in texts.values())
    assert "Bravo bridge" not in texts["scientist@example.com"]
    assert "Bravo bridge" in texts["everyone@example.com"]
