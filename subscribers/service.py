"""Subscriber operations shared by the CLI and the web app."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, func, select, update
from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.errors import SubscriberError
from digest.core.models import BounceEvent, Delivery
from subscribers.addresses import (
    check_address,
    check_name,
    check_timezone,
    key_hash,
    legacy_key,
)
from subscribers.lifecycle import SUBSCRIBED, transition
from subscribers.models import Subscriber, Suppression
from subscribers.preferences import check_cadence, check_tag, check_topics, set_preferences
from subscribers.status import Cadence, SubscriberSource, SubscriberStatus

CHUNK = 500


def find(session: Session, address: str) -> Subscriber | None:
    """The subscriber with this address, any case (a lookup takes any valid address)."""
    _, key = check_address(address, smtputf8=True)
    return by_key(session, key)


def by_key(session: Session, key: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.email_key == key))


def by_id(session: Session, subscriber_id: int) -> Subscriber | None:
    """The live subscriber a (token's) id names: a row merged into another (migration
    0013_address_case) stands for the one it was merged into; erased ones are None."""
    sub = session.get(Subscriber, subscriber_id)
    if sub is not None and sub.merged_into_id is not None:
        sub = session.get(Subscriber, sub.merged_into_id)
    return None if sub is None or sub.erased_at is not None else sub


def get(session: Session, address: str) -> Subscriber:
    """The subscriber with this address, or SubscriberError."""
    sub = find(session, address)
    if sub is None:
        raise SubscriberError(address.strip(), "no such subscriber")
    return sub


def suppression_hashes(email: str, key: str) -> set[str]:
    """The suppression-list hashes that stand for this address: of its key, and of its key
    as it was before keys ignored the local part's case (an erasure from back then)."""
    legacy = legacy_key(email, key)
    return {key_hash(key)} if legacy == key else {key_hash(key), key_hash(legacy)}


def erased_keys(session: Session, addresses: Iterable[tuple[str, str]]) -> set[str]:
    """The keys of those ``(email, key)`` whose address was erased (on the suppression list)."""
    by_hash = {h: k for e, k in addresses for h in suppression_hashes(e, k)}
    hashes = list(by_hash)
    found: set[str] = set()
    for start in range(0, len(hashes), CHUNK):
        chunk = hashes[start : start + CHUNK]
        found.update(
            session.scalars(select(Suppression.key_hash).where(Suppression.key_hash.in_(chunk)))
        )
    return {by_hash[h] for h in found}


def add(
    session: Session,
    address: str,
    name: str | None = None,
    source: str = SubscriberSource.CLI,
    status: SubscriberStatus = SubscriberStatus.ACTIVE,
    timezone: str | None = None,
    attributes: dict[str, Any] | None = None,
    check_deliverability: bool = False,
    smtputf8: bool = False,
    topics: Iterable[str] = (),
    cadence: str = Cadence.DAILY,
) -> Subscriber:
    """Add one subscriber; a known (in any case) or erased address is an error naming why.

    ``topics`` and ``cadence`` as subscribers.preferences checks them (no topics: everything).
    """
    email, key = check_address(address, check_deliverability, smtputf8=smtputf8)
    clean_name = check_name(name)
    zone = check_timezone(timezone)
    clean_topics = check_topics(topics)
    clean_cadence = check_cadence(cadence)
    existing = by_key(session, key)
    if existing is not None:
        raise SubscriberError(email, f"already a subscriber (status {existing.status})")
    if erased_keys(session, [(email, key)]):
        raise SubscriberError(email, "was erased and is suppressed; it can only subscribe itself")
    now = utcnow()
    sub = Subscriber(
        email=email,
        email_key=key,
        name=clean_name,
        status=status,
        source=str(source),
        timezone=zone,
        attributes=dict(attributes or {}),
        topics=clean_topics,
        cadence=clean_cadence.value,
        created_at=now,
        status_changed_at=now,
        confirmed_at=now if status == SubscriberStatus.ACTIVE else None,
    )
    session.add(sub)
    session.flush()
    return sub


def list_subscribers(
    session: Session,
    status: SubscriberStatus | None = None,
    source: str | None = None,
    search: str | None = None,
    *,
    topic: str | None = None,
    after_id: int | None = None,
    limit: int | None = None,
) -> Sequence[Subscriber]:
    """Subscribers in id order (erased ones left out), optionally filtered.

    ``search`` matches part of the address or the name, any case; ``topic`` keeps
    those who chose that topic; ``after_id`` and ``limit`` give one page (keyset:
    the ids after the last one of the page before).
    """
    query = select(Subscriber).where(Subscriber.erased_at.is_(None)).order_by(Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == status)
    if source is not None:
        query = query.where(Subscriber.source == source)
    if search and search.strip():
        pattern = f"%{_like_escaped(search.strip().lower())}%"
        query = query.where(
            func.lower(Subscriber.email).like(pattern, escape="\\")
            | func.lower(Subscriber.name).like(pattern, escape="\\")
        )
    if topic and topic.strip():
        # Topics are a JSON list of strings: the topic as JSON, quotes included, is one entry.
        entry = json.dumps(check_tag(topic))
        query = query.where(
            cast(Subscriber.topics, String).like(f"%{_like_escaped(entry)}%", escape="\\")
        )
    if after_id is not None:
        query = query.where(Subscriber.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class Received:
    """One edition a subscriber was in the ledger of: its state and when it last changed."""

    edition_id: int
    state: str
    at: datetime
    error: str | None


def received(session: Session, subscriber_id: int) -> list[Received]:
    """The ledger rows of one subscriber, newest edition first."""
    rows = session.scalars(
        select(Delivery)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Delivery.edition_id.desc())
    )
    return [
        Received(d.edition_id, str(d.state), d.sent_at or d.updated_at, d.last_error) for d in rows
    ]


def status_changes(sub: Subscriber) -> list[tuple[str, datetime]]:
    """The status timestamps the subscriber row keeps, oldest first."""
    stamps = (
        ("created", sub.created_at),
        ("confirmed", sub.confirmed_at),
        ("paused", sub.paused_at),
        ("unsubscribed", sub.unsubscribed_at),
        ("bounced", sub.bounced_at),
        ("complained", sub.complained_at),
        ("erased", sub.erased_at),
    )
    return sorted(((what, at) for what, at in stamps if at is not None), key=lambda p: p[1])


def count_active(session: Session) -> int:
    return (
        session.scalar(select(func.count()).where(Subscriber.status == SubscriberStatus.ACTIVE))
        or 0
    )


def unsubscribe(session: Session, address: str) -> bool:
    """Unsubscribe by address; False when it already was (or bounced/complained)."""
    sub = get(session, address)
    if sub.status in (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED):
        return False
    return transition(sub, SubscriberStatus.UNSUBSCRIBED)


def change_preferences(
    session: Session,
    address: str,
    topics: Iterable[str] | None = None,
    cadence: str | None = None,
) -> Subscriber:
    """Set an address's topics and/or cadence (None: unchanged); SubscriberError if unknown."""
    sub = get(session, address)
    set_preferences(sub, topics, cadence)
    session.flush()
    return sub


def revoke_links(session: Session, address: str) -> int:
    """Retire every link mailed to this address so far; returns the new link version.

    Bumps the version in its tokens (subscribers.tokens): older links answer
    410, links mailed from now on carry the new version. Other subscribers'
    links are untouched.
    """
    sub = get(session, address)
    sub.token_version = Subscriber.token_version + 1  # in SQL: two revokes never lose one
    session.flush()
    return sub.token_version


def erase(session: Session, address: str) -> None:
    """Delete a subscriber's personal data, keeping only a hash of the address as suppression.

    The row stays, anonymized, because the delivery ledger refers to it.
    """
    sub = get(session, address)
    now = utcnow()
    if sub.status in SUBSCRIBED:
        transition(sub, SubscriberStatus.UNSUBSCRIBED, now)
    digest = key_hash(sub.email_key)
    if session.get(Suppression, digest) is None:
        session.add(Suppression(key_hash=digest, reason="erased", created_at=now))
    sub.email = f"erased-{sub.id}@erased.invalid"
    sub.email_key = f"erased:{sub.id}"
    sub.name = ""
    sub.timezone = None
    sub.attributes = {}
    sub.topics = []  # what someone reads says something about them
    sub.erased_at = now
    # Returned mail keeps its kind and time; its text quotes the address.
    session.execute(
        update(BounceEvent).where(BounceEvent.subscriber_id == sub.id).values(diagnostic="")
    )
    session.flush()


def forget_suppression(session: Session, sub: Subscriber) -> None:
    """The address confirmed a new subscription itself: it is no longer suppressed."""
    hashes = suppression_hashes(sub.email, sub.email_key)
    session.execute(delete(Suppression).where(Suppression.key_hash.in_(hashes)))
