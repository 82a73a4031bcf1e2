"""Pausing: the preferences page pauses and resumes; a paused subscriber gets no edition."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from conftest import REFERENCE_STORY, Captured, Cli
from sqlalchemy import text
from subscriber_web import web_app

from digest.core.db import alembic_config, make_engine, upgrade


def add(cli: Cli, *emails: str) -> None:
    for email in emails:
        cli("subscribers", "add", email, "--name", email.split("@")[0])


def test_preferences_pause_then_resume(ready: Cli) -> None:
    add(ready, "reader@example.com")
    with web_app(ready) as web:
        sub = web.subscriber("reader@example.com")
        confirmed = sub.confirmed_at
        path = f"/preferences/{web.token('preferences', sub.id)}"
        page = web.client.get(path)
        assert 'value="pause"' in page.text and 'value="resume"' not in page.text

        paused = web.client.post(path, data={"action": "pause"})
        assert paused.status_code == 200 and "Paused" in paused.text
        assert 'value="resume"' in paused.text and 'value="pause"' not in paused.text
        sub = web.subscriber("reader@example.com")
        assert sub.status == "paused" and sub.paused_at is not None
        # Pausing twice is harmless; a paused subscriber can still leave from the page.
        assert web.client.post(path, data={"action": "pause"}).status_code == 200

        resumed = web.client.post(path, data={"action": "resume"})
        assert resumed.status_code == 200 and "Resumed" in resumed.text
        sub = web.subscriber("reader@example.com")
        assert sub.status == "active" and sub.confirmed_at == confirmed


def test_preferences_pause_is_refused_for_a_pending_subscriber(ready: Cli) -> None:
    (ready.cwd / "p.csv").write_text("email\nnew@example.com\n", encoding="utf-8")
    ready("subscribers", "import", "p.csv", "--pending")
    with web_app(ready) as web:
        sub = web.subscriber("new@example.com")
        path = f"/preferences/{web.token('preferences', sub.id)}"
        assert 'value="pause"' not in web.client.get(path).text
        refused = web.client.post(path, data={"action": "pause"})
        assert refused.status_code == 409 and "cannot pause while pending" in refused.text
        assert web.subscriber("new@example.com").status == "pending"


def test_paused_subscriber_leaves_and_is_listed_by_status(ready: Cli) -> None:
    add(ready, "a@example.com", "b@example.com")
    with web_app(ready) as web:
        for email in ("a@example.com", "b@example.com"):
            token = web.token("preferences", web.subscriber(email).id)
            web.client.post(f"/preferences/{token}", data={"action": "pause"})
        listed = json.loads(ready("subscribers", "list", "--status", "paused", "--json").output)
        assert [s["email"] for s in listed] == ["a@example.com", "b@example.com"]
        token = web.token("unsubscribe", web.subscriber("b@example.com").id)
        page = web.client.get(f"/unsubscribe/{token}")
        assert 'method="post"' in page.text
        web.client.post(f"/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click")
        assert web.subscriber("b@example.com").status == "unsubscribed"
    assert ready("subscribers", "unsubscribe", "a@example.com").output == (
        "unsubscribed a@example.com\n"
    )


def test_paused_subscriber_gets_no_edition(ready: Cli, captured: Captured) -> None:
    add(ready, "stays@example.com", "pauses@example.com", "back@example.com")
    with web_app(ready) as web:
        for email, actions in (
            ("pauses@example.com", ["pause"]),
            ("back@example.com", ["pause", "resume"]),
        ):
            token = web.token("preferences", web.subscriber(email).id)
            for action in actions:
                web.client.post(f"/preferences/{token}", data={"action": action})
    ready("stories", "import", str(REFERENCE_STORY))
    ready("edition", "build")
    ready("send", "latest")
    received = sorted(r for _, rcpts, _ in captured.envelopes for r in rcpts)
    assert received == ["back@example.com", "stays@example.com"]


def test_pause_round_trips_through_export_and_import(ready: Cli, tmp_path: Path) -> None:
    add(ready, "a@example.com")
    with web_app(ready) as web:
        token = web.token("preferences", web.subscriber("a@example.com").id)
        web.client.post(f"/preferences/{token}", data={"action": "pause"})
    exported = ready("subscribers", "export").output
    assert ",paused," in exported and "paused_at" in exported.splitlines()[0]
    (tmp_path / "out.csv").write_text(exported.replace("a@example.com", "b@example.com"))
    ready("subscribers", "import", "out.csv")
    with web_app(ready) as web:
        a, b = web.subscriber("a@example.com"), web.subscriber("b@example.com")
        assert (b.status, b.paused_at) == ("paused", a.paused_at)


def test_migration_0009_adds_paused_at_and_keeps_subscribers(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0008_source_text")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO subscribers (email, email_key, name, status, source, attributes,"
                    " created_at, status_changed_at) VALUES ('k@example.com', 'k@example.com',"
                    " 'Kept', 'active', 'csv', '{}', '2026-03-01', '2026-03-01')"
                )
            )
        upgrade(engine)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT name, status, paused_at FROM subscribers")).one()
        assert tuple(row) == ("Kept", "active", None)
        with engine.begin() as conn:
            conn.execute(text("UPDATE subscribers SET status = 'paused'"))
        command.downgrade(alembic_config(engine), "0008_source_text")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name, status FROM subscribers")).one() == (
                "Kept",
                "active",
            )
    finally:
        engine.dispose()
