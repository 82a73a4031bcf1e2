"""The subscriber lifecycle: the one place a status changes.

    pending ──► active ──► unsubscribed | bounced | complained
       │          ▲  │                  │
       │          │  ▼                  └──► pending   (re-subscribing goes through confirmation)
       │         paused ──► unsubscribed | bounced | complained
       └──► unsubscribed | bounced | complained

A paused subscriber gets no editions until it resumes (paused → active);
resuming keeps the original ``confirmed_at``.

A bounced address may also go back to ``pending`` (a confirmed re-subscription
proves the mailbox works again); a complaint is final.
"""

from __future__ import annotations

from datetime import datetime

from digest.core.db import utcnow
from digest.core.errors import SubscriberError
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus

# Statuses that must never be mailed an edition nor silently re-added by an import.
SUPPRESSED = frozenset(
    {SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED}
)
# Statuses that still belong to the list (may leave, may be paused or resumed).
SUBSCRIBED = frozenset({SubscriberStatus.PENDING, SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED})

ALLOWED: dict[SubscriberStatus, frozenset[SubscriberStatus]] = {
    SubscriberStatus.PENDING: SUPPRESSED | {SubscriberStatus.ACTIVE},
    SubscriberStatus.ACTIVE: SUPPRESSED | {SubscriberStatus.PAUSED},
    SubscriberStatus.PAUSED: SUPPRESSED | {SubscriberStatus.ACTIVE},
    SubscriberStatus.UNSUBSCRIBED: frozenset({SubscriberStatus.PENDING}),
    SubscriberStatus.BOUNCED: frozenset({SubscriberStatus.PENDING}),
    SubscriberStatus.COMPLAINED: frozenset(),
}

# The column stamped when a subscriber enters a status.
STAMPS: dict[SubscriberStatus, str] = {
    SubscriberStatus.ACTIVE: "confirmed_at",
    SubscriberStatus.PAUSED: "paused_at",
    SubscriberStatus.UNSUBSCRIBED: "unsubscribed_at",
    SubscriberStatus.BOUNCED: "bounced_at",
    SubscriberStatus.COMPLAINED: "complained_at",
}


class TransitionError(SubscriberError):
    """A status change the lifecycle does not allow."""

    def __init__(self, address: str, current: SubscriberStatus, wanted: SubscriberStatus) -> None:
        self.current = current
        self.wanted = wanted
        super().__init__(address, f"cannot go from {current} to {wanted}")


def can_transition(current: SubscriberStatus, wanted: SubscriberStatus) -> bool:
    return wanted in ALLOWED[current]


def transition(
    subscriber: Subscriber, wanted: SubscriberStatus, now: datetime | None = None
) -> bool:
    """Move ``subscriber`` to ``wanted``; False if it is already there (idempotent).

    Raises TransitionError for a change the lifecycle forbids.
    """
    current = SubscriberStatus(subscriber.status)
    if current == wanted:
        return False
    if not can_transition(current, wanted):
        raise TransitionError(subscriber.email, current, wanted)
    now = now or utcnow()
    subscriber.status = wanted
    subscriber.status_changed_at = now
    resuming = current == SubscriberStatus.PAUSED and wanted == SubscriberStatus.ACTIVE
    if wanted in STAMPS and not resuming:
        setattr(subscriber, STAMPS[wanted], now)
    return True
