"""Subscriber operations used by the CLI (and later the web app)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.db import utcnow
from digest.errors import SubscriberError
from subscribers.addresses import check_address, check_name
from subscribers.models import Subscriber, SubscriberStatus


def find(session: Session, address: str) -> Subscriber | None:
    _, key = check_address(address)
    return session.scalar(select(Subscriber).where(Subscriber.email_key == key))


def add(
    session: Session,
    address: str,
    name: str | None = None,
    source: str = "cli",
    status: SubscriberStatus = SubscriberStatus.ACTIVE,
) -> Subscriber:
    """Add one subscriber; an address already known is an error naming its status."""
    email, key = check_address(address)
    clean_name = check_name(name)
    existing = session.scalar(select(Subscriber).where(Subscriber.email_key == key))
    if existing is not None:
        raise SubscriberError(email, f"already a subscriber (status {existing.status})")
    now = utcnow()
    sub = Subscriber(
        email=email,
        email_key=key,
        name=clean_name,
        status=status,
        source=source,
        created_at=now,
        status_changed_at=now,
    )
    session.add(sub)
    session.flush()
    return sub


def list_subscribers(
    session: Session, status: SubscriberStatus | None = None
) -> Sequence[Subscriber]:
    query = select(Subscriber).order_by(Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == status)
    return session.scalars(query).all()


def count_active(session: Session) -> int:
    return (
        session.scalar(select(func.count()).where(Subscriber.status == SubscriberStatus.ACTIVE))
        or 0
    )
