"""Returned mail in: parse messages from files or the bounce mailbox and hand the
results to ``handle``, the one place that acts on them.

``handle`` only counts the results per kind for now: marking subscribers
bounced or complained, and figures per edition, are built on this seam (the
results carry the recipients, status codes and our Message-IDs they need).
``scan`` puts messages away only after ``handle`` returned, so a failure in
between leaves them in the mailbox for the next scan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from digest.core.errors import MailboxError
from digest.delivery.mailboxes import open_mailbox
from digest.mail.bounce_parse import KINDS, NOT_A_BOUNCE, NotAnEmail, Returned, parse

if TYPE_CHECKING:
    from digest.core.settings import Settings


@dataclass(frozen=True)
class Parsed:
    """One message and what it is; ``source`` is the file, or the mailbox's name for it."""

    source: str
    result: Returned

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.source,
            "kind": self.result.kind,
            "recipients": self.result.recipients,
            "status": self.result.status,
        }


@dataclass
class Summary:
    """What ``handle`` did with a batch: the messages and the count per kind."""

    parsed: list[Parsed] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        if not self.parsed:
            return "nothing new"
        noun = "message" if len(self.parsed) == 1 else "messages"
        kinds = ", ".join(f"{self.counts[k]} {k}" for k in KINDS if self.counts[k])
        return f"{len(self.parsed)} {noun}: {kinds}"


def handle(parsed: Sequence[Parsed]) -> Summary:
    """Act on parsed messages. For now: count them per kind (the policy comes later)."""
    return Summary(list(parsed), Counter(p.result.kind for p in parsed))


def unsubscribe_address(settings: Settings) -> str:
    """The address of the List-Unsubscribe mailto:, without any ?subject= part."""
    return settings.unsubscribe_mailto.removeprefix("mailto:").split("?", 1)[0]


def parse_files(settings: Settings, paths: Sequence[Path]) -> list[Parsed]:
    """Parse each file; MailboxError naming the first file that is missing or no email."""
    address = unsubscribe_address(settings)
    parsed = []
    for path in paths:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MailboxError(str(path), "no such file") from None
        except IsADirectoryError:
            raise MailboxError(str(path), "is a directory, not a message file") from None
        except OSError as exc:
            raise MailboxError(str(path), f"cannot read: {exc.strerror or exc}") from None
        try:
            parsed.append(Parsed(str(path), parse(data, unsubscribe_address=address)))
        except NotAnEmail as exc:
            raise MailboxError(str(path), str(exc)) from None
    return parsed


def import_files(settings: Settings, paths: Sequence[Path]) -> Summary:
    """Parse every file, then handle them together (one bad file: none is handled)."""
    return handle(parse_files(settings, paths))


@dataclass(frozen=True)
class Scanned:
    mailbox: str  # its URL, password hidden
    moved_to: str  # where handled messages went
    summary: Summary


def scan(settings: Settings) -> Scanned:
    """Read DIGEST_BOUNCE_MAILBOX, handle what it holds, then put that away."""
    box = open_mailbox(settings.bounce_mailbox)
    try:
        items = box.fetch()
        address = unsubscribe_address(settings)
        parsed = []
        for item in items:
            try:
                result = parse(item.data, unsubscribe_address=address)
            except NotAnEmail:
                result = Returned(NOT_A_BOUNCE)  # junk in the mailbox: counted, put away
            parsed.append(Parsed(item.ref, result))
        summary = handle(parsed)
        box.done(items)
        return Scanned(box.name, box.moved_to, summary)
    finally:
        box.close()
