"""What one edition did: its subject, when it ran, how fast, and what came of it.

``unsubscribed`` attributes an unsubscribe to the edition a reader got last
before leaving: a subscriber counts for edition E when E was sent to them,
they unsubscribed after that, and no later edition reached them before they
left. Nothing records which email's link was used, so this is the honest
reading of the ledger: the edition in the reader's inbox when they left.
``bounced`` counts this edition's deliveries refused with a 5xx reply while sending
plus those that verified returned mail names as bounced later (a refused delivery
was never accepted, so it is never also bounced by mail); ``complaints`` those that
drew a spam complaint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from digest.core.models import Delivery, Edition
from digest.core.status import DeliveryState
from digest.delivery import lifecycle, report
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus


@dataclass(frozen=True)
class EditionFigures:
    subject: str | None
    started_at: datetime | None
    finished_at: datetime | None
    sent: int
    failed: int
    unknown: int
    bounced: int
    complaints: int
    unsubscribed: int

    @property
    def seconds(self) -> float | None:
        """How long sending took (None until it finished)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max((self.finished_at - self.started_at).total_seconds(), 0.0)

    @property
    def rate(self) -> float | None:
        """Messages sent per second over the whole send."""
        seconds = self.seconds
        if not seconds:
            return None
        return self.sent / seconds


def unsubscribed_after(session: Session, edition_id: int) -> int:
    """Readers who left after this edition reached them and before any later one did."""
    later = aliased(Delivery)
    return int(
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(
                Delivery.edition_id == edition_id,
                Delivery.state == DeliveryState.SENT,
                Subscriber.unsubscribed_at.is_not(None),
                Subscriber.unsubscribed_at >= Delivery.sent_at,
                ~exists().where(
                    and_(
                        later.subscriber_id == Delivery.subscriber_id,
                        later.state == DeliveryState.SENT,
                        later.sent_at > Delivery.sent_at,
                        later.sent_at <= Subscriber.unsubscribed_at,
                    )
                ),
            )
        )
        or 0
    )


def edition_figures(session: Session, edition: Edition) -> EditionFigures:
    """The figures for ``edition`` from the ledger and the subscribers' records."""
    counts = lifecycle.counts(session, edition.id)
    bounced = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.edition_id == edition.id,
            Delivery.state == DeliveryState.FAILED,
            Delivery.reply_code >= 500,
        )
    )
    returned = report.returned_counts(session, [edition.id]).get(edition.id, {})
    return EditionFigures(
        subject=edition.rendered_subject,
        started_at=edition.started_at,
        finished_at=edition.finished_at,
        sent=counts.get(DeliveryState.SENT, 0),
        failed=counts.get(DeliveryState.FAILED, 0),
        unknown=counts.get(DeliveryState.UNKNOWN, 0),
        bounced=int(bounced or 0) + returned.get("bounces", 0),
        complaints=returned.get("complaints", 0),
        unsubscribed=unsubscribed_after(session, edition.id),
    )


@dataclass(frozen=True)
class AudienceCounts:
    """Who a send would mail now: every active subscriber, by cadence and by topic."""

    total: int
    by_cadence: dict[str, int]
    by_topic: dict[str, int]  # "all topics": subscribers who chose none (they get everything)


ALL_TOPICS = "all topics"


def audience_counts(session: Session) -> AudienceCounts:
    rows = session.execute(
        select(Subscriber.cadence, Subscriber.topics).where(
            Subscriber.status == SubscriberStatus.ACTIVE
        )
    ).all()
    by_cadence: dict[str, int] = {}
    by_topic: dict[str, int] = {}
    for cadence, topics in rows:
        by_cadence[cadence] = by_cadence.get(cadence, 0) + 1
        for topic in topics or [ALL_TOPICS]:
            by_topic[topic] = by_topic.get(topic, 0) + 1
    return AudienceCounts(
        len(rows), dict(sorted(by_cadence.items())), dict(sorted(by_topic.items()))
    )
