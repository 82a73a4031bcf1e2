"""An edition is rendered once, when its send starts, and stored: templates edited
afterwards change none of its messages, previews, checks or its archive page."""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

from alembic import command
from conftest import REFERENCE_STORY, SEEDS, Captured, Cli
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import alembic_config, make_engine, session_factory, upgrade
from digest.core.paths import builtin_templates
from digest.core.settings import Settings
from digest.delivery import lifecycle, service
from digest.delivery.manager import DeliveryOptions
from digest.editions import assemble
from digest.render.edition import Rendered, stored_render
from digest.transports.factory import open_transport
from digest.web.app import create_app

MARKER = "TEMPLATE EDITED AFTER THE START"
PERSONAL = re.compile(r"/(unsubscribe|preferences)/[^\s\"<>]+")
# Three messages, then this run stops: the rest stay pending for a resume.
FIRST_PART = DeliveryOptions(connections=1, claim_batch=3, max_rows=3, backoff=0.01)


def own_templates(cli: Cli) -> Path:
    """A copy of the built-in email templates that the CLI renders from (DIGEST_TEMPLATES_DIR)."""
    target = cli.cwd / "templates"
    target.mkdir()
    for name in ("digest.mjml", "digest.txt"):
        shutil.copy(builtin_templates() / name, target / name)
    cli.env["DIGEST_TEMPLATES_DIR"] = str(target)
    return target


def edit_templates(directory: Path) -> None:
    """Add a visible marker to both parts and drop the text part's unsubscribe link
    (so the pre-send check of anything rendered from them now fails)."""
    mjml = directory / "digest.mjml"
    mjml.write_text(
        mjml.read_text().replace(
            "</mj-body>",
            f"<mj-section><mj-column><mj-text>{MARKER}</mj-text></mj-column></mj-section>"
            "</mj-body>",
        )
    )
    txt = directory / "digest.txt"
    source = txt.read_text()
    assert "Unsubscribe:     {{ recipient.unsubscribe_url }}" in source
    txt.write_text(source.replace("Unsubscribe:     {{ recipient.unsubscribe_url }}", MARKER))


@contextmanager
def database(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.effective_database_url)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def bodies(message: EmailMessage) -> tuple[str, str]:
    """(text, HTML) with the recipient's own links blanked, so messages compare."""
    text_part, html_part = (part.get_content() for part in message.iter_parts())
    return PERSONAL.sub("/PERSONAL", text_part), PERSONAL.sub("/PERSONAL", html_part)


def test_stored_render_template_edited_after_start_changes_no_message_and_no_archive_page(
    ready: Cli, captured: Captured
) -> None:
    templates = own_templates(ready)
    ready("stories", "import", str(REFERENCE_STORY))
    for i in range(6):
        ready("subscribers", "add", f"reader{i}@example.com", "--name", f"Reader {i}")
    ready("edition", "build")
    settings = ready.settings()
    with database(settings) as factory:
        first = service.send_edition(
            settings, factory, "1", open_transport(settings), options=FIRST_PART
        )
        assert first.sent == 3 and len(captured.envelopes) == 3
        app = TestClient(create_app(settings, factory), "http://127.0.0.1")
        archive_before = app.get("/archive/1")
        assert archive_before.status_code == 200

        edit_templates(templates)
        # What the edited templates make, for contrast: a new draft shows the marker
        # and fails the check.
        ready("stories", "import", str(SEEDS / "stories" / "001_4f8a2c1e9b7d3a60.txt"))
        ready("edition", "build")
        assert MARKER in ready("preview", "2", "--format", "text").output
        failing = ready("check", "2", ok=False)
        assert failing.exit_code == 1 and "no unsubscribe link in the text part" in failing.output

        # The started edition: resumed without --force (no re-check), from its stored render.
        out = ready("send", "1").output
        assert "sent 3, failed 0" in out
        messages = captured.messages()
        assert sorted(str(m["To"]) for m in messages) == sorted(
            f"Reader {i} <reader{i}@example.com>" for i in range(6)
        )
        parts = {bodies(m) for m in messages}
        assert len(parts) == 1, "the resumed messages differ from the first ones"
        [(text_part, html_part)] = parts
        assert MARKER not in text_part and MARKER not in html_part
        assert "Unsubscribe:" in text_part
        assert len({str(m["Subject"]) for m in messages}) == 1

        archive_after = app.get("/archive/1")
        assert archive_after.text == archive_before.text and MARKER not in archive_after.text
        assert MARKER in app.get("/editions/2/preview.html").text  # drafts render live
        assert MARKER not in app.get("/editions/1/preview.html").text

    # Preview and check of the started edition show what went out.
    assert MARKER not in ready("preview", "1", "--format", "text").output
    assert MARKER not in ready("preview", "1", "--format", "html").output
    assert ready("check", "1").output == "edition 1: ok\n"


def test_stored_render_send_force_is_recorded_and_shown_by_status(
    ready: Cli, captured: Captured
) -> None:
    templates = own_templates(ready)
    edit_templates(templates)
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "reader@example.com")
    ready("edition", "build")
    refused = ready("send", "1", ok=False)
    assert refused.exit_code == 1 and "failed the pre-send check" in refused.output
    assert "pre-send check overridden" not in ready("status", "1").output
    assert "sent 1, failed 0" in ready("send", "1", "--force").output
    line = (
        "  pre-send check overridden with --force (1 problems: no unsubscribe link in the"
        " text part)"
    )
    assert line in ready("status", "1").output.splitlines()
    assert line in ready("edition", "show", "1").output.splitlines()
    data = json.loads(ready("status", "1", "--json").output)
    assert data["check_forced"] is True
    assert data["check_problems"] == ["no unsubscribe link in the text part"]
    assert MARKER in captured.messages()[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_stored_render_an_unforced_send_records_no_override(ready: Cli, captured: Captured) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "reader@example.com")
    ready("edition", "build")
    ready("send", "1", "--force")  # --force with nothing to override records nothing
    assert "overridden" not in ready("status", "1").output
    assert json.loads(ready("edition", "show", "1", "--json").output)["check_forced"] is False
    assert len(captured.envelopes) == 1


def test_migrations_0010_keeps_started_editions_which_then_render_live(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0009_paused")
        t = {"t": "2026-11-01 07:00:00"}
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO subscribers (id, email, email_key, name, status, source,"
                    " created_at, status_changed_at) VALUES (1, 'a@example.com',"
                    " 'a@example.com', 'A', 'active', 'cli', :t, :t)"
                ),
                t,
            )
            conn.execute(
                text(
                    "INSERT INTO stories (id, headline, summary, bullets, source, content_hash,"
                    " ingested_at) VALUES (1, 'Old Headline', 'S', '[\"b\"]', 'f.txt', 'h1', :t)"
                ),
                t,
            )
            conn.execute(
                text(
                    "INSERT INTO editions (id, status, created_at, started_at, finished_at)"
                    " VALUES (1, 'finished', :t, :t, :t)"
                ),
                t,
            )
            conn.execute(
                text("INSERT INTO edition_stories (edition_id, position, story_id) VALUES (1,0,1)")
            )
            conn.execute(
                text(
                    "INSERT INTO deliveries (id, edition_id, subscriber_id, state, message_id,"
                    " attempts, updated_at) VALUES (1, 1, 1, 'sent', '<m@x>', 1, :t)"
                ),
                t,
            )
        upgrade(engine)
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT status, started_at IS NOT NULL, rendered_html, rendered_subject,"
                    " check_forced FROM editions"
                )
            ).one()
            assert tuple(row) == ("finished", True, None, None, False)
            assert conn.execute(text("SELECT state FROM deliveries")).scalar() == "sent"
        settings = Settings(
            database_url=database_url, var_dir=tmp_path / "var", secret_key="test-secret"
        )
        client = TestClient(create_app(settings, session_factory(engine)), "http://127.0.0.1")
        page = client.get("/archive/1")
        assert page.status_code == 200 and "Old Headline" in page.text
        assert "Old Headline" in client.get("/archive").text
    finally:
        engine.dispose()


def test_stored_render_a_worker_resumes_from_it_without_a_new_check(
    ready: Cli, captured: Captured
) -> None:
    templates = own_templates(ready)
    ready("stories", "import", str(REFERENCE_STORY))
    for i in range(5):
        ready("subscribers", "add", f"reader{i}@example.com")
    ready("edition", "build")
    settings = ready.settings()
    with database(settings) as factory:
        service.send_edition(settings, factory, "1", open_transport(settings), options=FIRST_PART)
    edit_templates(templates)  # a fresh check of these would fail
    ready("worker", "--once")
    assert "finished" in ready("status", "1").output
    messages = captured.messages()
    assert len(messages) == 5 and len({bodies(m) for m in messages}) == 1
    assert all(MARKER not in part for m in messages for part in bodies(m))


def test_stored_render_two_concurrent_starts_keep_one_render(ready: Cli) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "reader@example.com")
    ready("edition", "build")
    settings = ready.settings()
    with database(settings) as factory:
        gate = threading.Barrier(2)
        renders: list[Rendered] = []

        def opener() -> None:
            gate.wait()
            _, messages, _ = service.open_send(settings, factory, "1")
            renders.append(messages.rendered)

        threads = [threading.Thread(target=opener) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with factory() as s:
            stored = stored_render(assemble.get(s, "1"))
            rows = lifecycle.counts(s, 1)
    assert len(renders) == 2 and renders[0] == renders[1] == stored
    assert sum(rows.values()) == 1
