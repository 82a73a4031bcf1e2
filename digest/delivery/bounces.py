"""The bounce policy: what refusals and returned mail do to a subscriber.

- ``mark_bounced``: a subscriber with enough 5xx refusals at sending becomes bounced.
- ``record`` and ``apply``: returned mail (``digest.delivery.intake``) is stored
  once per source message in ``bounce_events``; a verified hard bounce makes
  the subscriber bounced, DIGEST_SOFT_BOUNCE_LIMIT verified soft bounces of
  different deliveries within DIGEST_SOFT_BOUNCE_DAYS likewise (a later
  delivery that was sent and did not bounce resets the count), a verified
  complaint makes them complained, and an unsubscribe request unsubscribes.

Every status change goes through ``subscribers.lifecycle.transition``, the one
place a subscriber's status changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.models import BounceEvent, Delivery
from digest.core.status import DeliveryState
from digest.mail.bounce_parse import COMPLAINT, HARD, SOFT, UNSUBSCRIBE_REQUEST
from subscribers.lifecycle import SUBSCRIBED, can_transition, transition
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus


def mark_bounced(session: Session, subscriber_ids: Iterable[int], limit: int) -> list[int]:
    """Subscribers with ``limit`` or more hard bounces (5xx) become bounced; returns their ids."""
    ids = sorted(set(subscriber_ids))
    if not ids or limit <= 0:
        return []
    over = session.scalars(
        select(Delivery.subscriber_id)
        .where(
            Delivery.subscriber_id.in_(ids),
            Delivery.state == DeliveryState.FAILED,
            Delivery.reply_code >= 500,
        )
        .group_by(Delivery.subscriber_id)
        .having(func.count() >= limit)
    ).all()
    if over:
        now = utcnow()
        active = session.scalars(
            select(Subscriber)
            .where(Subscriber.id.in_(over), Subscriber.status == SubscriberStatus.ACTIVE)
            .order_by(Subscriber.id)
            .with_for_update()
        )
        for subscriber in active:
            transition(subscriber, SubscriberStatus.BOUNCED, now)
        session.flush()
    return list(over)


@dataclass(frozen=True)
class Event:
    """Returned mail about one subscriber, as the intake resolved it.

    ``verified``: a signed mark (VERP tag or Message-ID) named ``delivery_id``;
    only verified bounces and complaints change a subscriber.
    """

    subscriber_id: int
    delivery_id: int | None
    kind: str
    status: str | None = None
    diagnostic: str = ""
    verified: bool = False


def record(session: Session, source_key: str, event: Event, now: datetime) -> bool:
    """Store ``event`` once per (source message, subscriber); False when it was stored before."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {
        "delivery_id": event.delivery_id,
        "subscriber_id": event.subscriber_id,
        "kind": event.kind,
        "status": event.status,
        "diagnostic": event.diagnostic[:2000],
        "verified": event.verified,
        "received_at": now,
        "source_key": source_key,
    }
    insert = dialect.insert(BounceEvent).values(**values)
    insert = insert.on_conflict_do_nothing(index_elements=["source_key", "subscriber_id"])
    return session.execute(insert.returning(BounceEvent.id)).first() is not None


def soft_bounces(session: Session, subscriber_id: int, since: datetime) -> int:
    """Deliveries to this subscriber that soft-bounced since ``since`` and after the
    last delivery that was sent and never bounced (that one resets the count)."""
    bounced = select(BounceEvent.id).where(
        BounceEvent.delivery_id == Delivery.id, BounceEvent.kind.in_([HARD, SOFT])
    )
    clean = select(func.max(Delivery.id)).where(
        Delivery.subscriber_id == subscriber_id,
        Delivery.state == DeliveryState.SENT,
        ~bounced.exists(),
    )
    last_clean = session.scalar(clean) or 0
    query = select(func.count(func.distinct(BounceEvent.delivery_id))).where(
        BounceEvent.subscriber_id == subscriber_id,
        BounceEvent.kind == SOFT,
        BounceEvent.verified.is_(True),
        BounceEvent.received_at >= since,
        BounceEvent.delivery_id > last_clean,
    )
    return session.scalar(query) or 0


@dataclass(frozen=True)
class Policy:
    soft_limit: int = 3  # DIGEST_SOFT_BOUNCE_LIMIT
    soft_days: int = 14  # DIGEST_SOFT_BOUNCE_DAYS


def wanted_status(session: Session, event: Event, policy: Policy, now: datetime) -> str | None:
    """The status an event calls for (pure policy over the stored events), or None."""
    if event.kind == UNSUBSCRIBE_REQUEST:
        return SubscriberStatus.UNSUBSCRIBED  # RFC 2369 mailto: its sender asks
    if not event.verified:
        return None  # read from free text only: stored, never acted on
    if event.kind == HARD:
        return SubscriberStatus.BOUNCED
    if event.kind == COMPLAINT:
        return SubscriberStatus.COMPLAINED
    if event.kind == SOFT:
        since = now - timedelta(days=policy.soft_days)
        if soft_bounces(session, event.subscriber_id, since) >= policy.soft_limit:
            return SubscriberStatus.BOUNCED
    return None


def apply(session: Session, event: Event, policy: Policy, now: datetime) -> str | None:
    """Move the event's subscriber as the policy says; the new status, or None."""
    wanted = wanted_status(session, event, policy, now)
    if wanted is None:
        return None
    subscriber = session.scalar(
        select(Subscriber).where(Subscriber.id == event.subscriber_id).with_for_update()
    )
    if subscriber is None:
        return None
    current = SubscriberStatus(subscriber.status)
    if current == wanted or not can_transition(current, SubscriberStatus(wanted)):
        return None  # already there, or a final state (a complaint stays a complaint)
    if wanted == SubscriberStatus.UNSUBSCRIBED and current not in SUBSCRIBED:
        return None
    transition(subscriber, SubscriberStatus(wanted), now)
    return wanted


def events_by_subscriber(session: Session) -> dict[int, list[dict[str, object]]]:
    """Every stored event, JSON-ready, per subscriber id (oldest first): what the JSON
    export shows as each subscriber's ``returned_mail``."""
    query = (
        select(BounceEvent, Delivery.edition_id)
        .outerjoin(Delivery, Delivery.id == BounceEvent.delivery_id)
        .order_by(BounceEvent.received_at, BounceEvent.id)
    )
    found: dict[int, list[dict[str, object]]] = {}
    for event, edition_id in session.execute(query):
        found.setdefault(event.subscriber_id, []).append(
            {
                "kind": event.kind,
                "status": event.status,
                "diagnostic": event.diagnostic,
                "verified": event.verified,
                "edition": edition_id,
                "received_at": event.received_at.isoformat(),
            }
        )
    return found
