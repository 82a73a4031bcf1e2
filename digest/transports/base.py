"""The one-method transport interface the delivery manager talks to.

A transport sends one message to one recipient and reports how it went by
raising one of the per-message outcomes below; it knows nothing about
editions or ledgers. When it cannot work at all (an untrusted certificate, a
refused login, an envelope sender the server cannot take, a setting that is
wrong) it raises a ``DigestError`` before anything is sent, which stops the
send and leaves the message pending.

::

    SendFailure       per-message outcomes other than success
    ├── Rejected      the server refused it before accepting it (4xx, 5xx)
    ├── NotSent       provably not accepted, worth a retry (no connection, a drop before the dot)
    ├── Unsendable    provably not sent, a retry cannot help (a bad address or message)
    └── Unknown       the final dot may have reached the server: never retried by itself
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

Envelope = tuple[str, str]
"""(sender, recipient) of one message."""


class SendFailure(Exception):
    """Base of per-message outcomes other than success."""


class Rejected(SendFailure):
    """The server refused the message before accepting it (a 4xx or 5xx reply)."""

    def __init__(self, code: int, reply: str, stage: str = "") -> None:
        self.code = code
        self.reply = reply
        self.stage = stage
        super().__init__(f"{code} {reply}")

    @property
    def permanent(self) -> bool:
        return self.code >= 500


class NotSent(SendFailure):
    """Provably not accepted (e.g. no connection, or it dropped before DATA): safe to retry."""


class Unsendable(SendFailure):
    """Refused by the client before a byte of the message left: a failure, never retried.

    ``address`` is the recipient (or the message) at fault; ``reason`` says why
    (a line break in the address, a non-ASCII address the server cannot take,
    a line longer than SMTP allows). Sending it again would fail the same way.
    """

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"not sent: {reason}")


class Unknown(SendFailure):
    """The server may or may not have accepted it (e.g. a drop after the final dot)."""


class Transport(Protocol):
    def send(
        self, sender: str, recipient: str, message: bytes, *, then: Envelope | None = None
    ) -> None:
        """Send or raise Rejected / NotSent / Unsendable / Unknown.

        ``then`` is the envelope of the next message the caller will send on
        this thread; a transport may use it to start that message early
        (SMTP pipelining) or ignore it.
        """

    def close(self) -> None: ...


@dataclass
class MemoryTransport:
    """Keeps messages in a list; for logic tests."""

    sent: list[tuple[str, str, bytes]] = field(default_factory=list)

    def send(
        self, sender: str, recipient: str, message: bytes, *, then: Envelope | None = None
    ) -> None:
        self.sent.append((sender, recipient, message))

    def close(self) -> None:
        pass
