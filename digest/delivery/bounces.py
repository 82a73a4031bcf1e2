"""Hard bounces: a subscriber with enough 5xx refusals becomes bounced.

The status change goes through ``subscribers.lifecycle.transition``, the one
place a subscriber's status changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.models import Delivery
from digest.core.status import DeliveryState
from subscribers.lifecycle import transition
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
