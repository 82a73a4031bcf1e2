"""`digest bounces scan` against a real IMAP server (dovecot on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bounce_samples import SAMPLES, UNSUBSCRIBE_TO
from conftest import Captured, Cli
from imap_server import ImapServer, folder_messages, imap_server, running_imap  # noqa: F401
from returned_mail import (
    AS_THE_POLICY_SAYS,
    BOUNCE_ADDRESS,
    READERS,
    reference_edition,
    returned,
    statuses,
)


def deliver(server: ImapServer, names: list[str]) -> None:
    client = server.client()
    try:
        for name in names:
            client.append("INBOX", None, None, SAMPLES[name]())
    finally:
        client.logout()


def bounces_cli(tmp_path: Path, mailbox: str, **env: str) -> Cli:
    cli = Cli(
        {"DIGEST_BOUNCE_MAILBOX": mailbox, "DIGEST_UNSUBSCRIBE_MAILTO": UNSUBSCRIBE_TO, **env},
        tmp_path,
    )
    cli("init")
    return cli


def test_bounces_scan_imaps_reports_kinds_and_moves_to_processed(
    imap_server: ImapServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    deliver(imap_server, list(SAMPLES))
    cli = bounces_cli(tmp_path, imap_server.url(), SSL_CERT_FILE=str(imap_server.cafile))

    first = cli("bounces", "scan")

    assert first.output.splitlines() == [
        "1: hard ada@example.net grace@example.net 5.1.1",
        "2: complaint lin@example.com",
        "3: hard mo@example.biz 5.1.1",
        "4: auto-reply",
        "5: unsubscribe-request pat@example.com",
        "6: not-a-bounce",
        f"imaps://bounces:***@127.0.0.1:{imap_server.imaps_port}/INBOX: 6 messages: 2 hard, "
        "1 complaint, 1 auto-reply, 1 unsubscribe-request, 1 not-a-bounce; "
        "subscribers: none changed; moved to folder Processed",
    ]
    assert folder_messages(imap_server, "INBOX") == []
    processed = folder_messages(imap_server, "Processed")
    assert len(processed) == 6
    assert all(b"\\Seen" in flags for flags, _ in processed)
    assert sorted(body for _, body in processed) == sorted(make() for make in SAMPLES.values())

    second = cli("bounces", "scan")
    assert second.output.endswith("/INBOX: nothing new\n")

    deliver(imap_server, ["qmail.eml"])  # new mail after a scan is found by the next one
    third = cli("bounces", "scan")
    assert third.output.splitlines()[0] == "7: hard mo@example.biz 5.1.1"
    assert len(folder_messages(imap_server, "Processed")) == 7


def test_bounces_scan_plain_imap_to_loopback(
    imap_server: ImapServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    deliver(imap_server, ["dsn.eml"])
    result = bounces_cli(tmp_path, imap_server.url("imap"))("bounces", "scan")
    assert result.output.splitlines()[0] == "1: hard ada@example.net grace@example.net 5.1.1"
    assert folder_messages(imap_server, "INBOX") == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("password", "login refused: [AUTHENTICATIONFAILED] Authentication failed."),
        ("untrusted", "cannot connect: [SSL: CERTIFICATE_VERIFY_FAILED]"),
        ("folder", "no folder 'Nowhere'"),
    ],
)
def test_bounces_scan_imap_failures_are_one_line_and_leave_mail(
    imap_server: ImapServer,  # noqa: F811
    tmp_path: Path,
    case: str,
    expected: str,
) -> None:
    deliver(imap_server, ["dsn.eml"])
    env = {} if case == "untrusted" else {"SSL_CERT_FILE": str(imap_server.cafile)}
    url = imap_server.url(
        folder="Nowhere" if case == "folder" else "INBOX",
        password="wrong" if case == "password" else "s3cret-pass",
    )
    result = bounces_cli(tmp_path, url, **env)("bounces", "scan", ok=False)

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: imaps://bounces:***@127.0.0.1:{imap_server.imaps_port}/")
    assert expected in lines[0]
    assert "wrong" not in result.output and "s3cret" not in result.output
    assert len(folder_messages(imap_server, "INBOX")) == 1


def test_bounces_scan_imap_without_move_copies_and_expunges(tmp_path: Path) -> None:
    no_move = "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE UIDPLUS NAMESPACE"
    with running_imap(tmp_path, capability=no_move) as server:
        client = server.client()
        _, announced = client.capability()
        client.logout()
        assert b"MOVE" not in announced[0]
        deliver(server, ["dsn.eml", "complaint.eml"])
        cli = bounces_cli(tmp_path, server.url(), SSL_CERT_FILE=str(server.cafile))

        assert cli("bounces", "scan").output.splitlines()[:2] == [
            "1: hard ada@example.net grace@example.net 5.1.1",
            "2: complaint lin@example.com",
        ]
        assert folder_messages(server, "INBOX") == []
        processed = folder_messages(server, "Processed")
        assert len(processed) == 2
        assert all(b"\\Seen" in flags and b"\\Deleted" not in flags for flags, _ in processed)
        assert cli("bounces", "scan").output.endswith("/INBOX: nothing new\n")


def test_bounces_scan_imaps_applies_the_policy_to_mail_about_a_real_send(
    imap_server: ImapServer,  # noqa: F811
    ready: Cli,
    captured: Captured,
) -> None:
    ready.env |= {
        "DIGEST_BOUNCE_ADDRESS": BOUNCE_ADDRESS,
        "DIGEST_UNSUBSCRIBE_MAILTO": UNSUBSCRIBE_TO,
        "DIGEST_FROM": "The Digest <digest@news.example.org>",
        "DIGEST_BOUNCE_MAILBOX": imap_server.url(),
        "SSL_CERT_FILE": str(imap_server.cafile),
    }
    for address in READERS:
        ready("subscribers", "add", address)
    reference_edition(ready)
    assert all(mail_from.startswith("bounces+1-") for mail_from, _, _ in captured.envelopes)
    reports = returned(captured)
    client = imap_server.client()
    try:
        for data in reports:
            client.append("INBOX", None, None, data)
    finally:
        client.logout()

    first = ready("bounces", "scan").output
    assert "subscribers: 2 bounced, 1 complained, 1 unsubscribed" in first
    assert statuses(ready) == AS_THE_POLICY_SAYS  # auto-reply and forged token: no change

    client = imap_server.client()
    try:
        for data in reports:  # the same mail once more
            client.append("INBOX", None, None, data)
    finally:
        client.logout()
    second = ready("bounces", "scan").output
    assert "9 messages" in second and "subscribers: none changed" in second
    assert statuses(ready) == AS_THE_POLICY_SAYS
