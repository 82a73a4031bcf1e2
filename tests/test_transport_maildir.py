"""The Maildir transport: DIGEST_SMTP_URL=maildir:///dir (or file:///dir)."""

from __future__ import annotations

import mailbox
import shutil
from collections import Counter
from pathlib import Path

import pytest
from conftest import Captured, Cli
from sending_setup import edition_with

from digest.core.errors import DeliveryError
from digest.transports.base import NotSent
from digest.transports.maildir import MaildirTransport, parse_maildir_url


def delivered(box: Path) -> Counter[str]:
    return Counter(str(m["Delivered-To"]) for m in mailbox.Maildir(str(box), create=False))


@pytest.mark.parametrize("scheme", ["maildir", "file"])
def test_maildir_send_delivers_one_message_per_subscriber(
    cli: Cli, captured: Captured, tmp_path: Path, scheme: str
) -> None:
    box = tmp_path / "out" / "mail"
    with edition_with(cli, 25) as ed:
        cli.env["DIGEST_SMTP_URL"] = f"{scheme}://{box}"
        cli.env["DIGEST_BASE_URL"] = "https://news.example.org"  # one-click needs https
        out = cli("send", "1").output
        assert "sent 25, failed 0, unknown 0" in out
        assert delivered(box) == Counter(ed.emails)
        assert set(ed.states().values()) == {"sent"}
        assert ed.status() == "finished"
        assert "nothing new to send" in cli("send", "1").output
    assert len(list((box / "new").iterdir())) == 25
    assert not list((box / "tmp").iterdir())
    assert captured.envelopes == []  # nothing went to the SMTP server
    message = next(iter(mailbox.Maildir(str(box), create=False)))
    assert message["Return-Path"] == "<digest@localhost>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert b"\r\n" not in (box / "new" / next(iter((box / "new").iterdir()))).read_bytes()


def test_maildir_test_send_to_one_address(cli: Cli, tmp_path: Path) -> None:
    with edition_with(cli, 1):
        cli.env["DIGEST_SMTP_URL"] = "maildir:box"  # relative to the working directory
        cli("send", "1", "--to", "someone@example.org")
    assert delivered(tmp_path / "box") == Counter({"someone@example.org": 1})


def test_maildir_that_cannot_be_created_fails_in_one_line(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a directory")
    with edition_with(cli, 2) as ed:
        cli.env["DIGEST_SMTP_URL"] = f"maildir://{tmp_path / 'taken'}"
        result = cli("send", "1", ok=False)
        assert result.exit_code == 1
        assert result.output.startswith(f"Error: SMTP server maildir://{tmp_path / 'taken'}: ")
        assert "cannot create the Maildir" in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert set(ed.states().values()) <= {"pending"}


def test_maildir_write_failure_is_not_sent(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "box")
    shutil.rmtree(tmp_path / "box" / "tmp")
    with pytest.raises(NotSent, match="cannot write"):
        transport.send("a@example.com", "b@example.com", b"Subject: x\r\n\r\nbody\r\n")
    assert not list((tmp_path / "box" / "new").iterdir())


def test_maildir_url_forms() -> None:
    assert parse_maildir_url("maildir:///var/mail") == Path("/var/mail")
    assert parse_maildir_url("maildir://var/mail") == Path("var/mail")
    assert parse_maildir_url("file:var/mail") == Path("var/mail")
    assert parse_maildir_url("maildir:///a%20b") == Path("/a b")
    with pytest.raises(Exception, match="needs a directory"):
        parse_maildir_url("maildir://")


def test_maildir_transport_raises_delivery_error_for_a_bad_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(DeliveryError, match="cannot create the Maildir"):
        MaildirTransport(tmp_path / "f")
