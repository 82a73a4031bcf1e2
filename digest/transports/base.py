"""The one-method transport interface the delivery manager talks to.

A transport sends one message to one recipient and reports how it went by
raising one of three outcomes; it knows nothing about editions or ledgers.
When it cannot work at all (an untrusted certificate, a refused login, a
setting that is wrong) it raises a ``DigestError`` before anything is sent,
which stops the send and leaves the message pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


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
    """Provably not sent, and sending it again as it is would fail the same way
    (e.g. an address the server cannot take without SMTPUTF8): a failure of
    this message only."""


class Unknown(SendFailure):
    """The server may or may not have accepted it (e.g. a drop after the final dot)."""


class Transport(Protocol):
    def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Send or raise Rejected / NotSent / Unknown."""

    def close(self) -> None: ...


@dataclass
class MemoryTransport:
    """Keeps messages in a list; for logic tests."""

    sent: list[tuple[str, str, bytes]] = field(default_factory=list)

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        self.sent.append((sender, recipient, message))

    def close(self) -> None:
        pass
