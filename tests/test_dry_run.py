"""`digest send --dry-run` lists exactly whom the same send then mails, and refuses
where the send refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from conftest import REFERENCE_STORY, Captured, Cli
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import make_engine, session_factory, transaction, utcnow
from digest.core.models import Delivery
from digest.delivery import service
from digest.delivery.manager import DeliveryOptions
from digest.transports.factory import open_transport

FIRST_TWO = DeliveryOptions(connections=1, claim_batch=2, max_rows=2, backoff=0.01)


def planned(cli: Cli, *args: str) -> list[str]:
    """The addresses `send ARGS --dry-run --json` lists."""
    plan = json.loads(cli("send", *args, "--dry-run", "--json").output)
    return [r["email"] for r in plan["recipients"]]


def mailed_by(cli: Cli, captured: Captured, *args: str) -> list[str]:
    """The addresses `send ARGS` mails (exit status not asserted)."""
    before = len(captured.envelopes)
    cli("send", *args, ok=False)
    return [rcpt for _, rcpts, _ in captured.envelopes[before:] for rcpt in rcpts]


def setup(cli: Cli, readers: int) -> list[str]:
    cli("stories", "import", str(REFERENCE_STORY))
    emails = [f"reader{i}@example.com" for i in range(readers)]
    for email in emails:
        cli("subscribers", "add", email)
    cli("edition", "build")
    return emails


@contextmanager
def database(cli: Cli) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(cli.settings().effective_database_url)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def test_dry_run_of_a_draft_lists_the_active_subscribers_the_send_mails(
    ready: Cli, captured: Captured
) -> None:
    emails = setup(ready, 4)
    ready("subscribers", "unsubscribe", emails[1])
    plan = planned(ready, "1")
    assert plan == [emails[0], emails[2], emails[3]]
    assert captured.envelopes == [] and "draft" in ready("status", "1").output
    assert sorted(mailed_by(ready, captured, "1")) == sorted(plan)


def test_dry_run_of_a_resumed_send_lists_the_rest_without_who_left_since(
    ready: Cli, captured: Captured
) -> None:
    emails = setup(ready, 5)
    settings = ready.settings()
    with database(ready) as factory:
        first = service.send_edition(
            settings, factory, "1", open_transport(settings), options=FIRST_TWO
        )
    assert first.sent == 2
    sent = {rcpt for _, rcpts, _ in captured.envelopes for rcpt in rcpts}
    rest = [e for e in emails if e not in sent]
    ready("subscribers", "unsubscribe", rest[0])  # after the start: their row stays pending
    plan = planned(ready, "1")
    assert plan == rest[1:]
    out = ready("send", "1", "--dry-run").output
    assert f"{len(rest) - 1} recipients; 2 already done for this edition" in out
    assert sorted(mailed_by(ready, captured, "1")) == sorted(plan)
    # Finished: the dry run lists nobody, and the send mails nobody.
    assert planned(ready, "1") == [] and mailed_by(ready, captured, "1") == []


def test_dry_run_leaves_out_rows_not_yet_due(ready: Cli, captured: Captured) -> None:
    emails = setup(ready, 3)
    with database(ready) as factory:
        service.open_send(ready.settings(), factory, "1")  # the ledger, nothing sent yet
        with transaction(factory) as s:  # the second reader's local time comes tomorrow
            s.execute(
                update(Delivery)
                .where(Delivery.subscriber_id == 2)
                .values(not_before=utcnow() + timedelta(days=1))
            )
    plan = planned(ready, "1")
    assert plan == [emails[0], emails[2]]
    assert sorted(mailed_by(ready, captured, "1")) == plan


def test_dry_run_with_retry_lists_the_failed_the_retry_resends(
    ready: Cli, captured: Captured
) -> None:
    emails = setup(ready, 3)
    captured.reject[emails[2]] = "550 5.1.1 no such mailbox"
    ready("send", "1", ok=False)
    del captured.reject[emails[2]]
    assert planned(ready, "1") == []
    plan = planned(ready, "1", "--retry", "failed")
    assert plan == [emails[2]]
    assert "failed" in ready("status", "1").output  # the dry run put nothing back
    assert mailed_by(ready, captured, "1", "--retry", "failed") == plan


def test_dry_run_with_no_active_subscriber_refuses_as_the_send_does(
    ready: Cli, captured: Captured
) -> None:
    emails = setup(ready, 1)
    ready("subscribers", "unsubscribe", emails[0])
    dry = ready("send", "1", "--dry-run", ok=False)
    real = ready("send", "1", ok=False)
    line = "Error: edition 1: no active subscribers, nothing sent; the edition stays a draft"
    assert dry.exit_code == real.exit_code == 1
    assert dry.output.strip() == real.output.strip() == line
    assert captured.envelopes == []


def test_dry_run_refuses_a_paused_or_cancelled_edition_as_the_send_does(
    ready: Cli, captured: Captured
) -> None:
    setup(ready, 3)
    settings = ready.settings()
    with database(ready) as factory:
        service.send_edition(settings, factory, "1", open_transport(settings), options=FIRST_TWO)
    for action, why in (("pause", "is paused"), ("cancel", "is cancelled")):
        ready(action, "1")
        dry = ready("send", "1", "--dry-run", ok=False)
        real = ready("send", "1", ok=False)
        assert dry.exit_code == real.exit_code == 1
        assert why in dry.output and dry.output == real.output
    assert len(captured.envelopes) == 2


def test_dry_run_refuses_a_failing_check_unless_forced_as_the_send_does(
    ready: Cli, captured: Captured
) -> None:
    emails = setup(ready, 2)
    templates = ready.cwd / "templates"
    templates.mkdir()
    (templates / "digest.txt").write_text("{{ newsletter }}: no unsubscribe link here\n")
    ready.env["DIGEST_TEMPLATES_DIR"] = str(templates)
    dry = ready("send", "1", "--dry-run", ok=False)
    real = ready("send", "1", ok=False)
    assert dry.exit_code == real.exit_code == 1
    assert "no unsubscribe link in the text part" in dry.output and dry.output == real.output
    assert captured.envelopes == []
    plan = planned(ready, "1", "--force")
    assert plan == emails
    assert sorted(mailed_by(ready, captured, "1", "--force")) == plan
