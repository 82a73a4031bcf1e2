"""Whom a send mails: the one definition that starting an edition and a dry run share.

A draft edition gets a ledger row for every active subscriber
(``active_subscribers``, what ``lifecycle.start`` inserts). A started one
mails its pending rows that are due and whose subscriber is still active
(``due_rows``: what a claim takes; a claimed row whose subscriber left is
skipped, never mailed). ``digest send --dry-run`` lists exactly these.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select

from digest.core.models import Delivery
from digest.core.status import DeliveryState
from digest.delivery.claims import waiting
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus


def active_subscribers() -> Select[int, str, str, str | None]:
    """(id, email, name, time zone) of everyone a new edition's ledger gets a row for."""
    return (
        select(Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.timezone)
        .where(Subscriber.status == SubscriberStatus.ACTIVE)
        .order_by(Subscriber.id)
    )


def due_rows(
    edition_id: int, now: datetime, also: DeliveryState | None = None
) -> Select[int, int, str, str]:
    """(delivery id, subscriber id, email, name) of a started edition's rows a send mails now.

    ``also``: rows in this state too (``send --retry`` puts them back to pending first).
    """
    states = [DeliveryState.PENDING, *([also] if also is not None else [])]
    return (
        select(Delivery.id, Subscriber.id, Subscriber.email, Subscriber.name)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(waiting(edition_id, now, states), Subscriber.status == SubscriberStatus.ACTIVE)
        .order_by(Delivery.id)
    )
