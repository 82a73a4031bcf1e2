"""The per-hour cap as the ledger sees it: recent sends, and when the next one may go.

The sending threads of one process share a ``RateLimit``; seeding it from the
ledger at the start of each run makes the cap hold across runs and restarts
(a worker that polls every few seconds cannot send another hour's worth).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.models import Delivery

HOUR = timedelta(hours=1)


def recent_sends(session: Session, limit: int, now: datetime | None = None) -> list[datetime]:
    """Send times of the last ``limit`` messages (any edition) in the past hour, oldest first."""
    if limit <= 0:
        return []
    now = now or utcnow()
    times = session.scalars(
        select(Delivery.sent_at)
        .where(Delivery.sent_at.is_not(None), Delivery.sent_at > now - HOUR)
        .order_by(Delivery.sent_at.desc())
        .limit(limit)
    ).all()
    return sorted(t for t in times if t is not None)


def next_allowed(session: Session, limit: int, now: datetime | None = None) -> datetime | None:
    """When the cap next lets a message go, or None if one may go now (or there is no cap)."""
    now = now or utcnow()
    times = recent_sends(session, limit, now)
    if limit <= 0 or len(times) < limit:
        return None
    return times[0] + HOUR


def waiting_reason(session: Session, limit: int, now: datetime | None = None) -> str | None:
    """A one-line reason a running send is held back by the hourly cap, or None."""
    now = now or utcnow()
    at = next_allowed(session, limit, now)
    if at is None:
        return None
    return (
        f"hourly limit reached ({limit} messages in the last hour, DIGEST_HOURLY_LIMIT);"
        f" the next may go at {at.strftime('%H:%M:%S')} UTC"
    )
