"""Honest outcomes: a message that cannot be sent is refused before a byte of it leaves.

Against a real aiosmtpd server on 127.0.0.1 that records every command it
reads: each fault found before the final dot comes out as Unsendable (or a
DeliveryError for the envelope sender, which is every message's), never
Unknown, the server sees nothing of that message, and the same transport
sends the next message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from digest.core.errors import DeliveryError
from digest.processes.sink import free_port
from digest.transports.base import NotSent, Rejected, Unknown, Unsendable
from digest.transports.maildir import MaildirTransport
from digest.transports.smtp import SmtpTarget, SmtpTransport

OK = b"Subject: fine\r\n\r\nshort lines only\r\n"


@dataclass
class Recording:
    """Records every MAIL and RCPT it reads and every message it accepts."""

    mails: list[str] = field(default_factory=list)
    rcpts: list[str] = field(default_factory=list)
    accepted: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    mail_options: list[list[str]] = field(default_factory=list)
    dot_reply: str = "250 OK queued"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.mails.append(address)
        self.mail_options.append(options)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.rcpts.append(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return self.dot_reply


@contextmanager
def server(**options: Any) -> Iterator[tuple[Recording, SmtpTransport]]:
    options.setdefault("enable_SMTPUTF8", False)  # aiosmtpd's Controller offers it by default
    handler = Recording()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", port), timeout=5.0)
    try:
        yield handler, transport
    finally:
        transport.close()
        controller.stop()


def long_line_message() -> bytes:
    return b"Subject: wide\r\n\r\n" + b"x" * 1200 + b"\r\n"


@pytest.mark.parametrize(
    ("recipient", "message", "options", "why"),
    [
        ("café@example.com", OK, {}, "not ASCII and the server does not offer SMTPUTF8"),
        ("a@example.com\r\nRCPT TO:<evil@example.com>", OK, {}, "line break"),
        ("a@example.com\nRCPT TO:<evil@example.com>", OK, {}, "line break"),
        ("a\0@example.com", OK, {}, "line break or NUL"),
        ("bad\udcff@example.com", OK, {"enable_SMTPUTF8": True}, "cannot be encoded"),
        ("wide@example.com", long_line_message(), {}, "longer than 998 octets"),
        (
            "eight@example.com",
            "Subject: x\r\n\r\nnaïve\r\n".encode(),
            {"decode_data": True},  # aiosmtpd then offers no 8BITMIME
            "8-bit bytes and the server does not offer 8BITMIME",
        ),
    ],
    ids=["non-ascii", "crlf", "lf", "nul", "surrogate", "long-line", "8bit"],
)
def test_smtp_unsendable_message_leaves_nothing_on_the_wire_and_the_next_goes(
    recipient: str, message: bytes, options: dict[str, Any], why: str
) -> None:
    with server(**options) as (handler, transport):
        transport.send("from@example.org", "first@example.com", OK)
        with pytest.raises(Unsendable) as refused:
            transport.send("from@example.org", recipient, message)
        assert why in str(refused.value)
        assert refused.value.address == recipient
        transport.send("from@example.org", "next@example.com", OK)
    # The refused message never reached the server: no MAIL, no smuggled RCPT.
    assert handler.rcpts == ["first@example.com", "next@example.com"]
    assert len(handler.mails) == 2
    assert [to for _, to, _ in handler.accepted] == [["first@example.com"], ["next@example.com"]]


def test_smtp_non_ascii_address_goes_with_smtputf8_when_offered() -> None:
    with server(enable_SMTPUTF8=True) as (handler, transport):
        transport.send("from@example.org", "café@example.com", OK)
    assert handler.rcpts == ["café@example.com"]
    assert "SMTPUTF8" in handler.mail_options[0]
    assert handler.accepted[0][1] == ["café@example.com"]


def test_smtp_8bit_message_declares_8bitmime_when_offered() -> None:
    message = "Subject: x\r\n\r\nnaïve\r\n".encode()
    with server() as (handler, transport):
        transport.send("from@example.org", "eight@example.com", message)
    assert handler.mail_options == [["BODY=8BITMIME"]]
    assert handler.accepted[0][2] == message


@pytest.mark.parametrize(
    "sender",
    ["dígest@example.org", "from@example.org\r\nRCPT TO:<evil@example.com>"],
    ids=["non-ascii", "crlf"],
)
def test_smtp_bad_envelope_sender_stops_with_a_delivery_error_before_sending(sender: str) -> None:
    with server() as (handler, transport):
        with pytest.raises(DeliveryError, match="envelope sender"):
            transport.send(sender, "to@example.com", OK)
        transport.send("from@example.org", "to@example.com", OK)
    assert handler.mails == ["from@example.org"]
    assert handler.rcpts == ["to@example.com"]


def test_smtp_refusals_before_the_dot_are_never_unknown() -> None:
    """A server refusing at MAIL or at the end of DATA: Rejected, and the connection goes on."""
    with server() as (handler, transport):
        handler.dot_reply = "554 5.6.0 content refused"
        with pytest.raises(Rejected) as refused:
            transport.send("from@example.org", "to@example.com", OK)
        assert (refused.value.code, refused.value.stage) == (554, "end of DATA")
        handler.dot_reply = "250 OK queued"
        transport.send("from@example.org", "to@example.com", OK)
    assert len(handler.accepted) == 2


def test_smtp_garbled_reply_to_the_final_dot_is_unknown_not_a_refusal() -> None:
    """A reply to the dot that is no SMTP code may hide an acceptance: Unknown, never retried."""
    with server() as (handler, transport):
        handler.dot_reply = "Message accepted"  # no code: the client cannot read it
        with pytest.raises(Unknown):
            transport.send("from@example.org", "to@example.com", OK)
        handler.dot_reply = "250 OK queued"
        transport.send("from@example.org", "again@example.com", OK)  # on a fresh connection
    assert [to for _, to, _ in handler.accepted] == [["to@example.com"], ["again@example.com"]]


def test_smtp_server_gone_is_not_sent() -> None:
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", free_port()), timeout=2.0)
    with pytest.raises(NotSent):
        transport.send("from@example.org", "to@example.com", OK)


@pytest.mark.parametrize(
    "recipient", ["a@example.com\nBcc: evil@example.com", "bad\udcff@example.com"]
)
def test_maildir_unsendable_address_writes_no_file(tmp_path: Path, recipient: str) -> None:
    transport = MaildirTransport(tmp_path / "box")
    with pytest.raises(Unsendable):
        transport.send("from@example.org", recipient, OK)
    transport.send("from@example.org", "next@example.com", OK, then=("a@b.example", "c@d.example"))
    files = list((tmp_path / "box" / "new").iterdir())
    assert len(files) == 1
    assert b"Delivered-To: next@example.com\n" in files[0].read_bytes()
    assert not list((tmp_path / "box" / "tmp").iterdir())
