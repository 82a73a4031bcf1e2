"""The subscriber status vocabulary and where subscribers came from, in one place."""

from enum import StrEnum


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    # The subscriber asked for a break (preferences page): no editions until resumed.
    PAUSED = "paused"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class SubscriberSource(StrEnum):
    CSV = "csv"
    WEB = "web"
    CLI = "cli"
    API = "api"


class Cadence(StrEnum):
    """How often a subscriber gets a digest (weekly: on ``settings.weekly_day``)."""

    DAILY = "daily"
    WEEKLY = "weekly"
