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
