"""ORM models: stories, feeds, editions and their stories, deliveries, clock runs, web sessions.

Subscribers live in ``subscribers.models`` on the same metadata; deliveries refer to
them by foreign key only, so nothing here imports the subscribers package."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from digest.core.db import Base, UTCDateTime, str_enum, utcnow
from digest.core.status import DeliveryState, EditionStatus, RunOutcome


class Story(Base):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    headline: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text)
    bullets: Mapped[list[str]] = mapped_column(JSON, default=list)
    body: Mapped[str | None] = mapped_column(Text)  # sanitized HTML, never raw input
    url: Mapped[str | None] = mapped_column(String(2000))
    canonical_url: Mapped[str | None] = mapped_column(String(2000), index=True)
    source: Mapped[str] = mapped_column(Text)  # a file path or feed URL: no length limit
    source_guid: Mapped[str | None] = mapped_column(String(1000), index=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    image_url: Mapped[str | None] = mapped_column(String(2000))
    image_alt: Mapped[str | None] = mapped_column(String(500))
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Held back by the operator: no new edition takes it until it is released.
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    placement: Mapped[EditionStory | None] = relationship(back_populates="story")

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "headline": self.headline,
            "summary": self.summary,
            "bullets": list(self.bullets),
            "body": self.body,
            "url": self.url,
            "source": self.source,
            "source_guid": self.source_guid,
            "tags": list(self.tags or []),
            "image_url": self.image_url,
            "image_alt": self.image_alt,
            "priority": self.priority,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "ingested_at": self.ingested_at.isoformat(),
        }


class Feed(Base):
    """An RSS/Atom feed followed by URL; fetch problems are recorded here, not raised."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    backfill: Mapped[int] = mapped_column(Integer, default=0)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    primed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "url": self.url,
            "name": self.name,
            "tags": list(self.tags or []),
            "created_at": iso(self.created_at),
            "last_fetched_at": iso(self.last_fetched_at),
            "last_success_at": iso(self.last_success_at),
            "last_error": self.last_error,
        }


class SeenFeedItem(Base):
    """A feed item already handled (stored, or skipped when the feed was added)."""

    __tablename__ = "feed_seen_items"

    feed_id: Mapped[int] = mapped_column(
        ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True
    )
    item_key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the GUID
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Ids are INTEGER columns (32-bit on PostgreSQL): a larger number names nothing.
MAX_ID = 2**31 - 1


class Edition(Base):
    __tablename__ = "editions"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[EditionStatus] = mapped_column(
        str_enum(EditionStatus), default=EditionStatus.DRAFT
    )
    slot_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The render its messages are built from, stored when sending starts (NULL for a
    # draft, and for editions started before migration 0010: those render live).
    # HTML and text are deferred (loaded together on first use): listings never load them.
    rendered_subject: Mapped[str | None] = mapped_column(Text)
    rendered_preheader: Mapped[str | None] = mapped_column(Text)
    rendered_html: Mapped[str | None] = mapped_column(Text, deferred=True, deferred_group="render")
    rendered_text: Mapped[str | None] = mapped_column(Text, deferred=True, deferred_group="render")
    rendered_placeholders: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # Started with `send --force` over these pre-send check problems.
    check_forced: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    check_problems: Mapped[list[str] | None] = mapped_column(JSON)
    # Active subscribers given no row at the start: nothing new for them, or weekly
    # readers on another day (see digest.delivery.variants).
    skipped_nothing_new: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    skipped_not_due: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Set by the operator on a draft: a subject instead of the generated one, and a
    # Markdown intro above the first story (migration 0018).
    subject: Mapped[str | None] = mapped_column(Text)
    intro: Mapped[str | None] = mapped_column(Text)

    placements: Mapped[list[EditionStory]] = relationship(
        back_populates="edition", order_by="EditionStory.position"
    )

    @property
    def stories(self) -> list[Story]:
        return [p.story for p in self.placements]


class EditionStory(Base):
    """A story's place in an edition; a story is in at most one edition."""

    __tablename__ = "edition_stories"

    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), unique=True)

    edition: Mapped[Edition] = relationship(back_populates="placements")
    story: Mapped[Story] = relationship(back_populates="placement")


class EditionVariant(Base):
    """One story subset of an edition, rendered once and shared by every delivery built from it.

    The render columns are NULL when the subset is the whole edition (its render is
    the edition's own, ``Edition.rendered_*``), and for a variant made without one
    (then it renders live from its stories).
    """

    __tablename__ = "edition_variants"

    id: Mapped[int] = mapped_column(primary_key=True)
    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), index=True
    )
    rendered_subject: Mapped[str | None] = mapped_column(Text)
    rendered_preheader: Mapped[str | None] = mapped_column(Text)
    rendered_html: Mapped[str | None] = mapped_column(Text, deferred=True, deferred_group="render")
    rendered_text: Mapped[str | None] = mapped_column(Text, deferred=True, deferred_group="render")
    rendered_placeholders: Mapped[dict[str, str] | None] = mapped_column(JSON)


class VariantStory(Base):
    """A story a variant carries, in its place: with ``deliveries.variant_id`` the ledger
    says which stories each delivery carried (a story of an earlier edition too)."""

    __tablename__ = "variant_stories"

    variant_id: Mapped[int] = mapped_column(
        ForeignKey("edition_variants.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), index=True)


class Delivery(Base):
    """The ledger: one row per (edition, subscriber), the source of truth for sending."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id"),
        Index("ix_deliveries_edition_state", "edition_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id"), index=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), index=True)
    state: Mapped[DeliveryState] = mapped_column(
        str_enum(DeliveryState), default=DeliveryState.PENDING, index=True
    )
    message_id: Mapped[str] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A claim is (token, lease): only the holder of the token may move the row on.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(100))  # host:pid of the claimer
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply_code: Mapped[int | None] = mapped_column(Integer)
    # Local-time delivery: not sent before this instant (None: as soon as possible).
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The story subset this delivery carries (NULL only for rows made before 0016).
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("edition_variants.id"), index=True)


class BounceEvent(Base):
    """One piece of returned mail about one subscriber: a bounce, a complaint or an
    unsubscribe request, with the delivery it came from when a signed mark named it."""

    __tablename__ = "bounce_events"
    __table_args__ = (UniqueConstraint("source_key", "subscriber_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str | None] = mapped_column(String(20))
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    verified: Mapped[bool] = mapped_column(Boolean, default=False)  # a signed mark named it
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # sha256 of the message's own Message-ID (else of its bytes): read twice, stored once
    source_key: Mapped[str] = mapped_column(String(64))


class ClockRun(Base):
    __tablename__ = "clock_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(40), index=True)
    slot_key: Mapped[str | None] = mapped_column(String(100))
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[RunOutcome] = mapped_column(str_enum(RunOutcome))
    detail: Mapped[str] = mapped_column(Text, default="")
    edition_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("editions.id", ondelete="SET NULL")
    )


class Worker(Base):
    """A sending process that is alive: ``digest worker`` (or ``serve``/``schedule --worker``).

    Each process instance keeps its row's ``last_seen`` fresh every few seconds
    and deletes the row on a clean exit; a row not seen for a while is a worker
    that died. Times come from the database's clock.
    """

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # the claim owner id
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # "poll" or "queue"
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class WebSession(Base):
    """An operator's login to the web app; deleting the row logs that browser out everywhere.

    ``id`` is an HMAC of the secret in the session cookie, never the secret itself.
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
