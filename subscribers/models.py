"""The subscriber model and the suppression list (statuses: ``subscribers.status``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from digest.core.db import Base, UTCDateTime, str_enum, utcnow
from subscribers.status import SubscriberStatus


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # Unique key: surrounding space trimmed, lower-cased, IDN domain as Unicode
    # (subscribers.addresses): one mailbox, one subscriber.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # Change only through subscribers.lifecycle.transition (it keeps the timestamps).
    status: Mapped[SubscriberStatus] = mapped_column(
        str_enum(SubscriberStatus),
        default=SubscriberStatus.ACTIVE,
        index=True,
    )
    source: Mapped[str] = mapped_column(String(20), default="cli")
    timezone: Mapped[str | None] = mapped_column(String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    complained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the subscriber last paused (kept after resuming, like the other stamps).
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the last confirmation mail went out: the per-address rate limit.
    last_confirmation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by `digest subscribers erase`: the row stays (the delivery ledger points at
    # it) but holds no personal data any more.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of every token (subscribers.tokens): bumping it retires the links mailed before.
    token_version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    # Set by migration 0013_address_case on a duplicate (the same address in another
    # case) merged into this subscriber: the row stays, anonymized like an erased one,
    # for the ledger rows it keeps, and its old links act for the subscriber it names.
    merged_into_id: Mapped[int | None] = mapped_column(Integer)
    # Preferences: the story tags wanted, sorted, lower-case, no duplicates (empty:
    # everything), and how often (a subscribers.status.Cadence value).
    topics: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    cadence: Mapped[str] = mapped_column(
        String(10), default="daily", server_default=text("'daily'")
    )


class Suppression(Base):
    """An erased address, kept only as the SHA-256 of its normalized key."""

    __tablename__ = "suppressions"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(20), default="erased")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
