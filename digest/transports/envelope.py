"""What goes on the wire for one SMTP message, and every reason it cannot go, found first.

Pure functions, no I/O. The SMTP transport asks here before it writes a byte
of a message, so a message that cannot be sent at all is refused while it
provably has not left: a line break or NUL in an address (it would smuggle a
command), a non-ASCII address to a server without SMTPUTF8, an 8-bit body to
a server without 8BITMIME, a line longer than SMTP's 1,000 octets. A
recipient's or a message's fault is ``Unsendable`` (that message fails, the
send goes on); the envelope sender's fault is every message's, so it is a
``DeliveryError`` that stops the send with nothing marked.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass

from digest.core.errors import DeliveryError
from digest.transports.base import Unsendable

MAX_LINE = 998
"""Octets in a line before its CRLF (RFC 5321 4.5.3.1.6)."""

_FORBIDDEN = ("\r", "\n", "\0")


@dataclass(frozen=True)
class Features:
    """What the server's EHLO reply offers that changes what we may write."""

    pipelining: bool = False
    smtputf8: bool = False
    eightbitmime: bool = False

    @classmethod
    def of(cls, conn: smtplib.SMTP) -> Features:
        if not conn.does_esmtp:
            return cls()
        offered = conn.esmtp_features
        return cls("pipelining" in offered, "smtputf8" in offered, "8bitmime" in offered)


def check_message(recipient: str, message: bytes) -> None:
    """Raise Unsendable when a line of ``message`` is longer than SMTP allows."""
    if not short_lines(message):
        raise Unsendable(
            recipient, f"a line of the message is longer than {MAX_LINE} octets (SMTP's limit)"
        )


def short_lines(message: bytes) -> bool:
    """Whether no line (CR included, LF excluded) is longer than MAX_LINE + 1 octets.

    Jumps a window at a time to the last LF in it (a few µs for a 60 KB
    message, where splitting it into lines costs ten times that).
    """
    limit = MAX_LINE + 1
    start, end = 0, len(message)
    while end - start > limit:
        lf = message.rfind(b"\n", start, start + limit + 1)
        if lf < 0:
            return False
        start = lf + 1
    return True


def commands(
    sender: str, recipient: str, *, eightbit: bool, offered: Features, server: str
) -> tuple[bytes, bytes]:
    """The MAIL FROM and RCPT TO lines (CRLF-terminated) for one message.

    Raises Unsendable for a recipient that cannot be written, DeliveryError
    for such a sender, and Unsendable for an 8-bit body the server cannot take.
    """
    for c in _FORBIDDEN:
        if c in sender:
            raise DeliveryError(server, f"envelope sender {sender!r} contains a line break or NUL")
        if c in recipient:
            raise Unsendable(recipient, f"address {recipient!r} contains a line break or NUL")
    options = []
    utf8 = not (sender.isascii() and recipient.isascii())
    if utf8:
        if not offered.smtputf8:
            if not sender.isascii():
                raise DeliveryError(
                    server,
                    f"envelope sender {sender!r} is not ASCII and the server does not offer"
                    " SMTPUTF8",
                )
            raise Unsendable(
                recipient,
                f"address {recipient!r} is not ASCII and the server does not offer SMTPUTF8",
            )
        options.append("SMTPUTF8")
    if eightbit or utf8:
        if offered.eightbitmime:
            options.insert(0, "BODY=8BITMIME")
        elif eightbit:
            raise Unsendable(
                recipient, "the message has 8-bit bytes and the server does not offer 8BITMIME"
            )
    extra = "".join(" " + o for o in options)
    try:
        mail = f"MAIL FROM:{quoted(sender)}{extra}\r\n".encode()
    except UnicodeEncodeError:  # a lone surrogate, e.g. from undecodable input
        raise DeliveryError(server, f"envelope sender {sender!r} cannot be encoded") from None
    try:
        rcpt = f"RCPT TO:{quoted(recipient)}\r\n".encode()
    except UnicodeEncodeError:
        raise Unsendable(recipient, f"address {recipient!r} cannot be encoded") from None
    return mail, rcpt


_PLAIN_UNSAFE = frozenset('<>()"[]\\,;: \t')


def quoted(address: str) -> str:
    """``<address>`` as smtplib's quoteaddr() writes it, without its parser for the
    plain addresses a ledger holds (anything else still goes through quoteaddr)."""
    if address and address.count("@") == 1 and _PLAIN_UNSAFE.isdisjoint(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def dot_stuffed(message: bytes) -> bytes:
    """The DATA payload: lines starting with "." doubled, a final CRLF, then the ending dot."""
    # find() is several times faster than replace() on a 60 KB message, and most
    # messages have few lines (or none) that start with a dot.
    parts = [b"."] if message[:1] == b"." else []
    start = 0
    i = message.find(b"\n.")
    while i >= 0:
        parts += (message[start : i + 1], b".")
        start = i + 1
        i = message.find(b"\n.", start)
    parts.append(message[start:] if start else message)
    parts.append(b".\r\n" if message.endswith(b"\r\n") else b"\r\n.\r\n")
    return b"".join(parts)
