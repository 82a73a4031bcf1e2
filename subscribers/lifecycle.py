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
from subscribers.models import Subscriber, SubscriberStatus

S = SubscriberStatus

ALLOWED: dict[SubscriberStatus, frozenset[SubscriberStatus]] = {
    S.PENDING: frozenset({S.ACTIVE, S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED}),
    S.ACTIVE: frozenset({S.PAUSED, S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED}),
    S.PAUSED: frozenset({S.ACTIVE, S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED}),
    S.UNSUBSCRIBED: frozenset({S.PENDING}),
    S.BOUNCED: frozenset({S.PENDING}),
    S.COMPLAINED: frozenset(),
}

# The column stamped when a subscriber enters a status.
STAMPS: dict[SubscriberStatus, str] = {
    S.ACTIVE: "confirmed_at",
    S.PAUSED: "paused_at",
    S.UNSUBSCRIBED: "unsubscribed_at",
    S.BOUNCED: "bounced_at",
    S.COMPLAINED: "complained_at",
}

# Statuses that must never be mailed an edition nor silently re-added by an import.
SUPPRESSED = frozenset({S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED})
# Statuses that still belong to the list (may leave, may be paused or resumed).
SUBSCRIBED = frozenset({S.PENDING, S.ACTIVE, S.PAUSED})


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
    resuming = current == S.PAUSED and wanted == S.ACTIVE
    if wanted in STAMPS and not resuming:
        setattr(subscriber, STAMPS[wanted], now)
    return True
