"""Returned mail in: parse messages from files, the bounce mailbox or the inbound
route and hand the results to ``handle``, the one place that acts on them.

``handle`` resolves each result to the subscribers it is about and lets the
policy (``digest.delivery.bounces``) store and act on it, in one transaction.
A bounce or complaint names a delivery for sure only through a signed mark:
the VERP ``+tag`` it was returned to, or one of our Message-IDs in it, whose
MAC verifies under the signing key. Those subscribers are acted on. A
recipient read only from the report's text is stored, unverified, when it is
a subscriber, and changes nothing. An unsubscribe request unsubscribes the
subscriber it comes from. ``scan`` puts messages away only after ``handle``
returned, so a failure in between leaves them in the mailbox for the next scan.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction, utcnow
from digest.core.errors import DigestError, MailboxError
from digest.core.models import Delivery
from digest.delivery import bounces
from digest.delivery.mailboxes import open_mailbox
from digest.mail.bounce_parse import (
    COMPLAINT,
    HARD,
    KINDS,
    NOT_A_BOUNCE,
    SOFT,
    UNSUBSCRIBE_REQUEST,
    NotAnEmail,
    Returned,
    parse,
)
from digest.mail.return_path import read_message_id, read_verp_tag
from subscribers import service as subscribers_service
from subscribers.models import Subscriber

if TYPE_CHECKING:
    from digest.core.settings import Settings

ACTED_ON = (HARD, SOFT, COMPLAINT)


@dataclass(frozen=True)
class Parsed:
    """One message and what it is; ``source`` is the file, or the mailbox's name for it."""

    source: str
    result: Returned
    key: str = ""  # sha256 of its own Message-ID, else of its bytes (see source_key)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.source,
            "kind": self.result.kind,
            "recipients": self.result.recipients,
            "status": self.result.status,
        }


@dataclass
class Summary:
    """What ``handle`` did with a batch: the messages, the count per kind, the events
    stored (verified and not) and the subscribers moved, per new status."""

    parsed: list[Parsed] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    stored: Counter[str] = field(default_factory=Counter)  # "verified" / "unverified"
    changed: Counter[str] = field(default_factory=Counter)  # new status -> subscribers

    def describe(self) -> str:
        if not self.parsed:
            return "nothing new"
        noun = "message" if len(self.parsed) == 1 else "messages"
        kinds = ", ".join(f"{self.counts[k]} {k}" for k in KINDS if self.counts[k])
        moved = ", ".join(f"{n} {status}" for status, n in sorted(self.changed.items()))
        return f"{len(self.parsed)} {noun}: {kinds}; subscribers: {moved or 'none changed'}"

    def as_dict(self) -> dict[str, object]:
        return {
            "messages": len(self.parsed),
            "kinds": dict(self.counts),
            "stored": dict(self.stored),
            "changed": dict(self.changed),
        }


def source_key(data: bytes) -> str:
    """What makes a message the same message when read again: its Message-ID, else its bytes."""
    own = str(BytesHeaderParser(policy=compat32).parsebytes(data).get("Message-ID", "")).strip()
    return hashlib.sha256(own.encode() if own else data).hexdigest()


def _subscriber(session: Session, address: str) -> Subscriber | None:
    try:
        return subscribers_service.find(session, address)
    except DigestError:
        return None  # not an address at all: read from free text, names nobody


def events_of(session: Session, key: bytes, result: Returned) -> list[bounces.Event]:
    """The subscribers a result is about, each as one event (see the module docstring)."""
    if result.kind == UNSUBSCRIBE_REQUEST:
        asker = _subscriber(session, result.sender) if result.sender else None
        if asker is None:
            return []
        return [bounces.Event(asker.id, None, UNSUBSCRIBE_REQUEST)]
    if result.kind not in ACTED_ON:
        return []
    named = {read_verp_tag(key, tag) for tag in result.verp_tokens}
    named |= {read_message_id(key, mid) for mid in result.message_ids}
    pairs = sorted(pair for pair in named if pair is not None)
    rows: list[tuple[int, int, str]] = []
    if pairs:
        result_rows = session.execute(
            select(Delivery.id, Delivery.subscriber_id, Subscriber.email)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(tuple_(Delivery.edition_id, Delivery.subscriber_id).in_(pairs))
            .order_by(Delivery.id)
        )
        rows = [(d, s, e) for d, s, e in result_rows]
    failures = {f.address.lower(): f for f in result.failures}
    events = []
    for delivery_id, subscriber_id, email in rows:
        own = failures.pop(email.lower(), None)
        kind = own.kind if own else result.kind
        status = own.status if own else result.status
        diagnostic = own.diagnostic if own else result.diagnostic
        events.append(bounces.Event(subscriber_id, delivery_id, kind, status, diagnostic, True))
    # The rest was only read from the report's text: stored for a subscriber, never acted on.
    seen = {event.subscriber_id for event in events}
    for failure in failures.values():
        found = _subscriber(session, failure.address)
        if found is not None and found.id not in seen:
            event = bounces.Event(found.id, None, failure.kind, failure.status, failure.diagnostic)
            events.append(event)
            seen.add(found.id)
    return events


def handle(settings: Settings, factory: sessionmaker[Session], parsed: Sequence[Parsed]) -> Summary:
    """Store and act on parsed messages in one transaction; a message read before is
    stored once and changes nothing the second time."""
    summary = Summary(list(parsed), Counter(p.result.kind for p in parsed))
    key = settings.signing_key()
    policy = bounces.Policy(settings.soft_bounce_limit, settings.soft_bounce_days)
    with transaction(factory) as session:
        now = utcnow()
        for item in parsed:
            for event in events_of(session, key, item.result):
                if not bounces.record(session, item.key, event, now):
                    continue
                summary.stored["verified" if event.verified else "unverified"] += 1
                moved = bounces.apply(session, event, policy, now)
                if moved is not None:
                    summary.changed[str(moved)] += 1
    return summary


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
            result = parse(data, unsubscribe_address=address)
            parsed.append(Parsed(str(path), result, source_key(data)))
        except NotAnEmail as exc:
            raise MailboxError(str(path), str(exc)) from None
    return parsed


def parse_bytes(settings: Settings, source: str, data: bytes) -> Parsed:
    """One message as it came (the inbound route); NotAnEmail when it is none."""
    result = parse(data, unsubscribe_address=unsubscribe_address(settings))
    return Parsed(source, result, source_key(data))


@dataclass(frozen=True)
class Scanned:
    mailbox: str  # its URL, password hidden
    moved_to: str  # where handled messages went
    summary: Summary


def scan(settings: Settings, factory: Callable[[], sessionmaker[Session]]) -> Scanned:
    """Read DIGEST_BOUNCE_MAILBOX, handle what it holds, then put that away.

    ``factory`` is asked for the database only once the mailbox was read."""
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
            parsed.append(Parsed(item.ref, result, source_key(item.data)))
        summary = handle(settings, factory(), parsed)
        box.done(items)
        return Scanned(box.name, box.moved_to, summary)
    finally:
        box.close()
