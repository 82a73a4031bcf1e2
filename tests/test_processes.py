"""The Procfile processes: clock (once per slot), worker, web app."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import REFERENCE_STORY, Captured, Cli
from fastapi.testclient import TestClient

from digest.core.db import make_engine, session_factory, transaction
from digest.delivery import lifecycle
from digest.editions import assemble
from digest.processes.jobs import run_slot
from digest.web.app import create_app


def test_clock_slot_builds_one_edition_even_when_fired_twice_and_a_worker_sends_it(
    ready: Cli, captured: Captured
) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "reader@example.com")
    settings = ready.settings()
    engine = make_engine(settings.effective_database_url)
    factory = session_factory(engine)
    slot = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    try:
        first = run_slot(settings, factory, slot)
        second = run_slot(settings, factory, slot)
    finally:
        engine.dispose()
    assert first == 1 and second is None
    assert captured.envelopes == []  # the clock only opens the edition
    assert "waiting for a worker" in ready("status", "1").output
    assert "sent 1, failed 0" in ready("worker", "--once").output
    assert len(captured.envelopes) == 1
    assert "1  finished" in ready("edition", "list").output


def test_clock_slot_without_new_stories_builds_nothing(ready: Cli) -> None:
    settings = ready.settings()
    engine = make_engine(settings.effective_database_url)
    try:
        assert run_slot(settings, session_factory(engine), datetime.now(UTC)) is None
    finally:
        engine.dispose()
    assert ready("edition", "list", "--json").output.strip() == "[]"


def test_schedule_rejects_a_bad_cron_expression(ready: Cli) -> None:
    ready.env["DIGEST_SCHEDULE"] = "every morning"
    result = ready("schedule", ok=False)
    assert result.exit_code == 1
    assert "DIGEST_SCHEDULE" in result.output and "Traceback" not in result.output


def test_worker_once_sends_pending_deliveries_of_a_running_edition(
    ready: Cli, captured: Captured
) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "one@example.com")
    ready("subscribers", "add", "two@example.com")
    ready("edition", "build")
    settings = ready.settings()
    engine = make_engine(settings.effective_database_url)
    try:
        with transaction(session_factory(engine)) as s:
            lifecycle.start(
                s, assemble.get(s, "1"), "localhost", signing_key=settings.signing_key()
            )
    finally:
        engine.dispose()
    assert "running" in ready("status", "1").output
    out = ready("worker", "--once").output
    assert "sent 2, failed 0" in out
    assert len(captured.envelopes) == 2
    assert "finished" in ready("status", "1").output


def test_web_healthz_and_preview_need_the_token_when_one_is_set(ready: Cli) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    settings = ready.settings(admin_token="s3cret")
    engine = make_engine(settings.effective_database_url)
    try:
        client = TestClient(create_app(settings, session_factory(engine)), "http://127.0.0.1")
        assert client.get("/healthz").text == "ok"
        assert client.get("/preview/next").status_code == 401
        page = client.get("/preview/next", headers={"Authorization": "Bearer s3cret"})
        assert page.status_code == 200 and "US, Israel Show Signs" in page.text
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        missing = client.get("/editions/42/preview", headers={"Authorization": "Bearer s3cret"})
        assert missing.status_code == 404
    finally:
        engine.dispose()


def test_serve_refuses_a_public_address_without_an_admin_token(ready: Cli) -> None:
    result = ready("serve", "--host", "0.0.0.0", ok=False)
    assert result.exit_code == 1
    assert "DIGEST_ADMIN_TOKEN" in result.output
