"""The delivery manager: drives one edition through the ledger to a transport.

It owns the ledger rows' states and the edition's status; the transport only
sends bytes. Semantics are at most once: a row is committed as ``sending``
before the transport is called, and only failures that provably happened
before the server accepted the message go back to ``pending``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CursorResult, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from digest import editions
from digest.check import CheckFailed, check_factory
from digest.db import transaction, utcnow
from digest.errors import DeliveryError, EditionError, SubscriberError
from digest.mail import MessageFactory, Recipient, message_id, prepare
from digest.models import Delivery, Edition
from digest.settings import Settings
from digest.status import OPEN_DELIVERY_STATES, DeliveryState, EditionStatus
from digest.transport import NotSent, Rejected, Transport, Unknown
from subscribers.models import Subscriber, SubscriberStatus

Progress = Callable[[int], None]
BATCH = 1000


@dataclass
class SendSummary:
    edition_id: int
    total: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    already_done: int = 0
    elapsed: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.failed + self.unknown


def open_ledger(session: Session, edition: Edition, domain: str) -> bool:
    """Move a draft edition to running and create its ledger rows, once.

    The conditional UPDATE makes two concurrent starts harmless: only one
    creates rows. Returns True when this call started the edition.
    """
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Edition)
        .where(Edition.id == edition.id, Edition.status == EditionStatus.DRAFT)
        .values(status=EditionStatus.RUNNING, started_at=utcnow())
    )
    started = result.rowcount
    if not started:
        return False
    ids = session.scalars(
        select(Subscriber.id)
        .where(Subscriber.status == SubscriberStatus.ACTIVE)
        .order_by(Subscriber.id)
    ).all()
    now = utcnow()
    for start in range(0, len(ids), BATCH):
        session.execute(
            insert(Delivery),
            [
                {
                    "edition_id": edition.id,
                    "subscriber_id": sid,
                    "state": DeliveryState.PENDING,
                    "message_id": message_id(edition.id, sid, domain),
                    "attempts": 0,
                    "updated_at": now,
                }
                for sid in ids[start : start + BATCH]
            ],
        )
    return True


def ledger_counts(session: Session, edition_id: int) -> dict[DeliveryState, int]:
    rows = session.execute(
        select(Delivery.state, func.count())
        .where(Delivery.edition_id == edition_id)
        .group_by(Delivery.state)
    )
    return {DeliveryState(state): n for state, n in rows}


def finish_if_done(session: Session, edition_id: int) -> bool:
    """Mark a running edition finished when no row is still open. The one place that does."""
    open_rows = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.state.in_(OPEN_DELIVERY_STATES))
    )
    if open_rows:
        return False
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Edition)
        .where(Edition.id == edition_id, Edition.status == EditionStatus.RUNNING)
        .values(status=EditionStatus.FINISHED, finished_at=utcnow())
    )
    return bool(result.rowcount)


class DeliveryManager:
    def __init__(
        self, factory: sessionmaker[Session], transport: Transport, messages: MessageFactory
    ) -> None:
        self.factory = factory
        self.transport = transport
        self.messages = messages

    def _set(self, delivery_id: int, **values: object) -> None:
        with transaction(self.factory) as s:
            s.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))

    def run(
        self, progress: Progress | None = None, stop: threading.Event | None = None
    ) -> SendSummary:
        """Send every pending row of the edition; returns what happened.

        Setting ``stop`` (e.g. on SIGTERM) ends the run between two messages.
        """
        edition_id = self.messages.edition_id
        summary = SendSummary(edition_id)
        began = time.monotonic()
        with self.factory() as s:
            counts = ledger_counts(s, edition_id)
            pending = s.execute(
                select(Delivery.id, Subscriber.id, Subscriber.email, Subscriber.name)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(Delivery.edition_id == edition_id, Delivery.state == DeliveryState.PENDING)
                .order_by(Delivery.id)
            ).all()
        summary.total = sum(counts.values())
        summary.already_done = summary.total - len(pending)
        sender = self.messages.sender.addr_spec
        try:
            for delivery_id, sub_id, email, name in pending:
                if stop is not None and stop.is_set():
                    break
                self._deliver(delivery_id, Recipient(sub_id, email, name), sender, summary)
                if progress:
                    progress(1)
        finally:
            self.transport.close()
            with transaction(self.factory) as s:
                finish_if_done(s, edition_id)
            summary.elapsed = time.monotonic() - began
        return summary

    def _deliver(self, delivery_id: int, to: Recipient, sender: str, summary: SendSummary) -> None:
        try:
            message = self.messages.build(to)
        except SubscriberError as exc:
            self._set(delivery_id, state=DeliveryState.FAILED, last_error=str(exc))
            summary.failed += 1
            summary.failures.append((to.email, str(exc)))
            return
        for attempt in (1, 2):
            self._set(delivery_id, state=DeliveryState.SENDING, attempts=Delivery.attempts + 1)
            try:
                self.transport.send(sender, to.email, message)
            except Rejected as exc:
                self._set(delivery_id, state=DeliveryState.FAILED, last_error=str(exc))
                summary.failed += 1
                summary.failures.append((to.email, str(exc)))
                return
            except Unknown as exc:
                self._set(delivery_id, state=DeliveryState.UNKNOWN, last_error=str(exc))
                summary.unknown += 1
                summary.failures.append((to.email, str(exc)))
                return
            except NotSent as exc:
                self._set(delivery_id, state=DeliveryState.PENDING, last_error=str(exc))
                if attempt == 2:
                    raise DeliveryError(_server(self.transport), str(exc)) from None
                continue
            except BaseException:
                # Interrupted mid-send: we cannot know whether it went out.
                self._set(delivery_id, state=DeliveryState.UNKNOWN, last_error="interrupted")
                raise
            self._set(delivery_id, state=DeliveryState.SENT, sent_at=utcnow(), last_error=None)
            summary.sent += 1
            return


def _server(transport: Transport) -> str:
    target = getattr(transport, "target", None)
    return getattr(target, "display", type(transport).__name__)


def send_edition(
    settings: Settings,
    factory: sessionmaker[Session],
    ref: str,
    transport: Transport,
    on_start: Callable[[int, int], None] | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    force: bool = False,
) -> SendSummary:
    """Render edition ``ref`` once, check it, open its ledger and send every pending row.

    A failed pre-send check raises CheckFailed unless ``force``.
    ``on_start(edition_id, pending)`` is called before the first message.
    """
    domain = settings.sender.domain or "localhost"
    with transaction(factory) as s:
        edition = editions.get(s, ref)
        if edition.status == EditionStatus.CANCELLED:
            raise EditionError(f"edition {edition.id} is cancelled", edition.id)
        if not edition.placements:
            raise EditionError(f"edition {edition.id} has no stories", edition.id)
        view = editions.view_of(edition)
        # Render and check before opening the ledger: a failure leaves the edition a draft.
        messages = prepare(settings, view, edition.id)
        problems = check_factory(messages)
        if problems and not force:
            raise CheckFailed(edition.id, problems)
        open_ledger(s, edition, domain)
        pending = ledger_counts(s, edition.id).get(DeliveryState.PENDING, 0)
    if on_start:
        on_start(edition.id, pending)
    return DeliveryManager(factory, transport, messages).run(progress, stop)


def editions_with_pending(session: Session) -> list[int]:
    """Running editions that still have pending rows (what a worker picks up)."""
    return list(
        session.scalars(
            select(Edition.id)
            .where(
                Edition.status == EditionStatus.RUNNING,
                select(Delivery.id)
                .where(Delivery.edition_id == Edition.id, Delivery.state == DeliveryState.PENDING)
                .exists(),
            )
            .order_by(Edition.id)
        )
    )
