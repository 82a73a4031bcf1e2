"""The bounce policy end to end: a real send through aiosmtpd with VERP return paths,
returned mail built from what arrived, `digest bounces scan` of a Maildir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Captured, Cli
from returned_mail import (
    AS_THE_POLICY_SAYS,
    BOUNCE_ADDRESS,
    READERS,
    UNSUBSCRIBE_TO,
    dsn,
    ids,
    put_in_maildir,
    reference_edition,
    returned,
    send_edition,
    sent_messages,
    statuses,
)
from sqlalchemy import create_engine, func, select
from subscriber_web import web_app

from digest.core.models import BounceEvent
from digest.mail.return_path import read_verp_tag

KEY = b"test-secret"  # the test CLI's DIGEST_SECRET_KEY


def events_of(cli: Cli, subscriber_id: int) -> list[tuple[str, str]]:
    engine = create_engine(cli.env["DIGEST_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            query = select(BounceEvent.kind, BounceEvent.diagnostic).where(
                BounceEvent.subscriber_id == subscriber_id
            )
            return [(kind, diagnostic) for kind, diagnostic in conn.execute(query)]
    finally:
        engine.dispose()


@pytest.fixture
def policy_cli(ready: Cli, tmp_path: Path) -> Cli:
    ready.env |= {
        "DIGEST_BOUNCE_ADDRESS": BOUNCE_ADDRESS,
        "DIGEST_UNSUBSCRIBE_MAILTO": UNSUBSCRIBE_TO,
        "DIGEST_FROM": "The Digest <digest@news.example.org>",
        "DIGEST_BOUNCE_MAILBOX": f"maildir://{tmp_path / 'Maildir'}",
    }
    for address in READERS:
        ready("subscribers", "add", address)
    return ready


def event_count(cli: Cli) -> int:
    engine = create_engine(cli.env["DIGEST_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(BounceEvent)) or 0
    finally:
        engine.dispose()


def test_bounce_policy_verp_send_then_scan_marks_exactly_the_policys_subscribers(
    policy_cli: Cli, captured: Captured, tmp_path: Path
) -> None:
    reference_edition(policy_cli)
    by_id = ids(policy_cli)
    for mail_from, rcpts, _ in captured.envelopes:
        local, _, domain = mail_from.partition("@")
        assert domain == "news.example.org" and local.startswith("bounces+")
        assert read_verp_tag(KEY, local.split("+", 1)[1]) == (1, by_id[rcpts[0]])

    put_in_maildir(tmp_path / "Maildir", returned(captured))
    out = policy_cli("bounces", "scan").output
    assert out.splitlines()[-1].endswith(
        "9 messages: 5 hard, 1 soft, 1 complaint, 1 auto-reply, 1 unsubscribe-request; "
        "subscribers: 2 bounced, 1 complained, 1 unsubscribed; "
        f"moved to {tmp_path}/Maildir/.processed"
    )
    assert statuses(policy_cli) == AS_THE_POLICY_SAYS
    stored = event_count(policy_cli)
    assert stored == 8  # r1 … r5; r6 (forged token), r8 and r9 unverified; the auto-reply none

    # The same mail again (a second copy in the mailbox): stored once, nothing changes.
    put_in_maildir(tmp_path / "Maildir", returned(captured))
    again = policy_cli("bounces", "scan").output
    assert "subscribers: none changed" in again
    assert event_count(policy_cli) == stored

    status = policy_cli("status", "1").output
    assert "  returned: 3 bounced, 1 complaints" in status  # r1, r2 (soft), r4; r3
    data = json.loads(policy_cli("status", "1", "--json").output)
    assert data["returned"] == {"bounces": 3, "complaints": 1}
    with web_app(policy_cli) as web:
        page = web.client.get("/editions/1").text
    assert "<dt>Bounced</dt><dd>3</dd>" in page and "<dt>Complaints</dt><dd>1</dd>" in page

    exported = json.loads(policy_cli("subscribers", "export", "--format", "json").output)
    returned_mail = {r["email"]: r["returned_mail"] for r in exported}
    assert [
        (e["kind"], e["status"], e["verified"], e["edition"])
        for e in returned_mail["r1@example.net"]
    ] == [("hard", "5.1.1", True, 1)]
    assert [(e["kind"], e["verified"], e["edition"]) for e in returned_mail["r8@example.net"]] == [
        ("hard", False, None)
    ]
    assert returned_mail["r7@example.net"] == []  # the auto-reply
    csv_header = policy_cli("subscribers", "export").output.splitlines()[0]
    assert "returned_mail" not in csv_header  # the CSV stays what imports back

    assert "mailbox trouble" in events_of(policy_cli, by_id["r1@example.net"])[0][1]
    policy_cli("subscribers", "erase", "r1@example.net", "--yes")
    assert events_of(policy_cli, by_id["r1@example.net"]) == [("hard", "")]  # text quoted it


def test_bounce_policy_without_bounce_address_mail_from_is_the_from_address(
    ready: Cli, captured: Captured
) -> None:
    ready.env["DIGEST_FROM"] = "The Digest <digest@news.example.org>"
    ready("subscribers", "add", "one@example.net")
    reference_edition(ready)
    assert [mail_from for mail_from, _, _ in captured.envelopes] == ["digest@news.example.org"]


def test_bounce_policy_soft_bounces_count_to_the_limit_and_a_clean_delivery_resets(
    policy_cli: Cli, captured: Captured, tmp_path: Path, story_dir: Path
) -> None:
    policy_cli.env["DIGEST_SOFT_BOUNCE_LIMIT"] = "2"
    reader = READERS[0]
    box = tmp_path / "in"
    box.mkdir()

    def soft_bounce_latest(edition: int) -> None:
        sent = sent_messages(captured)[reader]
        path = box / f"soft-{edition}.eml"
        path.write_bytes(dsn(sent, "4.2.2", serial=str(edition)))
        policy_cli("bounces", "import", str(path))

    send_edition(policy_cli, story_dir, 1)
    soft_bounce_latest(1)
    send_edition(policy_cli, story_dir, 2)  # sent, never bounced: the count starts again
    send_edition(policy_cli, story_dir, 3)
    soft_bounce_latest(3)
    assert statuses(policy_cli)[reader] == "active"  # 2 soft bounces, but a clean one between
    send_edition(policy_cli, story_dir, 4)
    soft_bounce_latest(4)
    assert statuses(policy_cli)[reader] == "bounced"
    assert statuses(policy_cli)[READERS[1]] == "active"


def test_bounce_policy_same_delivery_soft_bouncing_twice_counts_once(
    policy_cli: Cli, captured: Captured, tmp_path: Path
) -> None:
    policy_cli.env["DIGEST_SOFT_BOUNCE_LIMIT"] = "2"
    reference_edition(policy_cli)
    sent = sent_messages(captured)[READERS[0]]
    files = []
    for serial in ("a", "b", "c"):  # "still trying" three times about one message
        path = tmp_path / f"{serial}.eml"
        path.write_bytes(dsn(sent, "4.4.1", serial=serial))
        files.append(str(path))
    policy_cli("bounces", "import", *files)
    assert statuses(policy_cli)[READERS[0]] == "active"
