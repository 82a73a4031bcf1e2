"""Sending an edition: what the CLI, the web app, the clock, the queue and the demo call.

``open_send`` does everything before the first message (render once, check,
start the edition, retry, reap); ``send_opened`` runs a ``DeliveryManager``
over what it opened; ``send_edition`` is both. ``editions_with_pending`` is
what a worker picks up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction, utcnow
from digest.core.errors import EditionError
from digest.core.models import Delivery, Edition
from digest.core.settings import Settings
from digest.core.status import DeliveryState, EditionStatus
from digest.delivery import claims, lifecycle
from digest.delivery.manager import DeliveryManager, DeliveryOptions, OnSent, SendSummary
from digest.editions import assemble
from digest.mail.check import CheckFailed, check_edition
from digest.mail.message import MessageFactory, prepare
from digest.transports.base import Transport
from subscribers import service as subscribers


def send_edition(
    settings: Settings,
    factory: sessionmaker[Session],
    ref: str,
    transport: Transport,
    on_start: Callable[[int, int], None] | None = None,
    on_sent: OnSent | None = None,
    stop: threading.Event | None = None,
    force: bool = False,
    retry: DeliveryState | None = None,
    options: DeliveryOptions | None = None,
    local_slot: datetime | None = None,
) -> SendSummary:
    """Render edition ``ref`` once, check it, open its ledger and send every pending row.

    A failed pre-send check raises CheckFailed unless ``force``. ``retry``
    (failed or unknown) first puts those rows back to pending, on purpose.
    ``on_start(edition_id, pending)`` is called before the first message.
    ``local_slot`` (a wall-clock time) makes each subscriber's row wait for
    that time in their own zone; rows not yet due are left for later sends.
    """
    edition_id, messages, pending = open_send(settings, factory, ref, force, retry, local_slot)
    if on_start:
        on_start(edition_id, pending)
    return send_opened(settings, factory, messages, transport, on_sent, stop, options)


def send_opened(
    settings: Settings,
    factory: sessionmaker[Session],
    messages: MessageFactory,
    transport: Transport,
    on_sent: OnSent | None = None,
    stop: threading.Event | None = None,
    options: DeliveryOptions | None = None,
) -> SendSummary:
    """Send the pending rows of an edition ``open_send`` opened (``messages`` is its factory)."""
    options = options or DeliveryOptions.from_settings(settings)
    summary = DeliveryManager(factory, transport, messages, options).run(on_sent, stop)
    with factory() as s:
        held = lifecycle.counts(s, messages.edition_id).get(DeliveryState.UNKNOWN, 0)
    summary.unknown_held = held
    return summary


def open_send(
    settings: Settings,
    factory: sessionmaker[Session],
    ref: str,
    force: bool = False,
    retry: DeliveryState | None = None,
    local_slot: datetime | None = None,
) -> tuple[int, MessageFactory, int]:
    """Everything before the first message: render, check, open the ledger, retry, reap.

    Returns (edition id, the message factory, pending rows). A queue defers
    chunk tasks after this instead of sending in-process.
    """
    domain = settings.sender.domain or "localhost"
    with transaction(factory) as s:
        edition = assemble.get(s, ref)
        if edition.status == EditionStatus.CANCELLED:
            raise EditionError(f"edition {edition.id} is cancelled", edition.id)
        if edition.status == EditionStatus.PAUSED:
            raise EditionError(
                f"edition {edition.id} is paused: `digest resume {edition.id}` first", edition.id
            )
        if not edition.placements:
            raise EditionError(f"edition {edition.id} has no stories", edition.id)
        view = assemble.view_of(edition)
        # Render and check before opening the ledger: a failure leaves the edition a draft.
        messages = prepare(settings, view, edition.id)
        problems = check_edition(settings, view, edition.id, messages)
        if problems and not force:
            raise CheckFailed(edition.id, problems)
        if edition.status == EditionStatus.DRAFT and not subscribers.count_active(s):
            raise EditionError(
                f"edition {edition.id}: no active subscribers, nothing sent;"
                " the edition stays a draft",
                edition.id,
            )
        lifecycle.start(s, edition, domain, local_slot, settings.timezone)
        if retry is not None:
            lifecycle.retry(s, edition.id, retry)
    with transaction(factory) as s:
        claims.reap(s, edition.id)
        pending = pending_rows(s, edition.id)
    return edition.id, messages, pending


def pending_rows(session: Session, edition_id: int) -> int:
    """How many of the edition's rows are pending (left to send)."""
    return lifecycle.counts(session, edition_id).get(DeliveryState.PENDING, 0)


def editions_with_pending(session: Session) -> list[int]:
    """Running editions that still have pending rows (what a worker picks up)."""
    return list(
        session.scalars(
            select(Edition.id)
            .where(
                Edition.status == EditionStatus.RUNNING,
                select(Delivery.id)
                .where(
                    Delivery.edition_id == Edition.id,
                    Delivery.state == DeliveryState.PENDING,
                    claims.due(utcnow()),
                )
                .exists(),
            )
            .order_by(Edition.id)
        )
    )


EDITION_ACTIONS = ("pause", "resume", "cancel")


def change_edition(factory: sessionmaker[Session], ref: str, action: str) -> tuple[int, int]:
    """Pause, resume or cancel edition ``ref`` (an id or 'latest') in one transaction.

    Returns the edition's id and how many deliveries a cancel skipped (0 otherwise).
    """
    if action not in EDITION_ACTIONS:
        raise EditionError(f"no action {action!r} (use {', '.join(EDITION_ACTIONS)})")
    with transaction(factory) as s:
        edition_id = assemble.get(s, ref).id
        skipped = 0
        if action == "pause":
            lifecycle.pause(s, edition_id)
        elif action == "resume":
            lifecycle.resume(s, edition_id)
        else:
            skipped = lifecycle.cancel(s, edition_id)
    return edition_id, skipped
