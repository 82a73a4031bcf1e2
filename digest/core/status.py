"""Status vocabularies, in one place."""

from enum import StrEnum


class EditionStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class DeliveryState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


# States a delivery can still move out of without an operator.
OPEN_DELIVERY_STATES = frozenset(
    {DeliveryState.PENDING, DeliveryState.CLAIMED, DeliveryState.SENDING}
)


class RunOutcome(StrEnum):
    BUILT = "built"  # an edition was built for the slot and its send started
    SKIPPED = "skipped"  # too few new stories
    DUPLICATE = "duplicate"  # another clock already took the slot
    MISSED = "missed"  # the clock was down past the grace time
    FAILED = "failed"
    DONE = "done"  # a job without slots (feed polling) ran
