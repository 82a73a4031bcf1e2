"""Sending an edition: what the CLI, the web app, the clock, the queue and the demo call.

``open_send`` does everything before the first message (render once, check,
start the edition and store its render, retry, reap); ``send_opened`` runs a
``DeliveryManager`` over what it opened; ``send_edition`` is both.
``editions_with_pending`` is what a worker picks up. ``prepare_ref`` and
``check_ref`` are what previews and checks build from (the stored render
of a started edition); ``digest.delivery.readers`` has the dry run and each
reader's own preview.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction, utcnow
from digest.core.errors import EditionError, RenderError
from digest.core.models import Delivery, Edition, Story
from digest.core.settings import Settings
from digest.core.status import DeliveryState, EditionStatus
from digest.delivery import claims, lifecycle
from digest.delivery.manager import DeliveryManager, DeliveryOptions, OnSent, SendSummary
from digest.delivery.messages import EditionMessages
from digest.delivery.sendable import (
    refuse_without_subscribers,
    sendable,
    started_messages,
    variant_renderer,
)
from digest.delivery.variants import RenderStories
from digest.editions import assemble, editor
from digest.mail.check import (
    CheckFailed,
    blocking,
    check_edition,
    html_size,
    size_findings,
    warnings,
)
from digest.mail.message import (
    MessageFactory,
    prepare,
    prepare_edition,
)
from digest.mail.preflight import preflight
from digest.render.edition import EditionView, Rendered, stored_render
from digest.transports.base import Transport

log = logging.getLogger("digest.delivery")


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
    slot: datetime | None = None,
) -> SendSummary:
    """Render edition ``ref`` once, check it, open its ledger and send every pending row.

    A failed pre-send check raises CheckFailed unless ``force``. ``retry``
    (failed or unknown) first puts those rows back to pending, on purpose.
    ``on_start(edition_id, pending)`` is called before the first message.
    ``local_slot`` (a wall-clock time) makes each subscriber's row wait for
    that time in their own zone; rows not yet due are left for later sends.
    ``slot``: the scheduled time the edition is for (its day decides whether
    weekly readers are due); now when not given.
    """
    edition_id, messages, pending = open_send(
        settings, factory, ref, force, retry, local_slot, slot
    )
    if on_start:
        on_start(edition_id, pending)
    return send_opened(settings, factory, messages, transport, on_sent, stop, options)


def send_opened(
    settings: Settings,
    factory: sessionmaker[Session],
    messages: EditionMessages,
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
        edition = s.get(Edition, messages.edition_id)
        if edition is not None:
            summary.skipped_nothing_new = edition.skipped_nothing_new or 0
            summary.skipped_not_due = edition.skipped_not_due or 0
    summary.unknown_held = held
    return summary


def open_send(
    settings: Settings,
    factory: sessionmaker[Session],
    ref: str,
    force: bool = False,
    retry: DeliveryState | None = None,
    local_slot: datetime | None = None,
    slot: datetime | None = None,
) -> tuple[int, EditionMessages, int]:
    """Everything before the first message: render, check, open the ledger, retry, reap.

    A draft is rendered and checked here, and its render is stored as it
    starts; an edition already started is built from that stored render, with
    no render and no check (the check ran, or was overridden with --force, at
    its start). Each subscriber's row points at the variant (story subset)
    that is theirs, each variant rendered once here (``lifecycle.start``).
    Returns (edition id, the edition's messages, pending rows). A queue
    defers chunk tasks after this instead of sending in-process.
    """
    domain = settings.sender.domain or "localhost"
    with transaction(factory) as s:
        edition = sendable(s, ref)
        if edition.status == EditionStatus.DRAFT:
            view = assemble.view_of(edition)
            # Render and check before opening the ledger: a failure leaves the edition a draft.
            whole = prepare(settings, view, edition.id)
            problems = _judged(check_edition(settings, view, edition.id, whole), edition.id, force)
            refuse_without_subscribers(s, edition.id)
            forced: list[str] = []
            render = _size_checked(variant_renderer(settings, edition), edition.id, force, forced)
            started = lifecycle.start(
                s,
                edition,
                domain,
                local_slot,
                settings.timezone,
                rendered=whole.rendered,
                forced_over=problems,
                render=render,
                weekly_day=settings.weekly_day,
                slot=slot,
                signing_key=settings.signing_key(),
            )
            if started and forced:  # a variant Gmail would clip, sent anyway: recorded
                edition.check_forced = True
                edition.check_problems = [*(edition.check_problems or []), *forced]
            messages = EditionMessages(whole, settings, factory)
            if not started:  # another sender started it first: build from its render
                s.expire(edition)
                messages = started_messages(settings, edition, factory)
        else:
            messages = started_messages(settings, edition, factory)
        if retry is not None:
            lifecycle.retry(s, edition.id, retry)
    with transaction(factory) as s:
        claims.reap(s, edition.id)
        pending = pending_rows(s, edition.id)
    return edition.id, messages, pending


def _size_checked(
    render: RenderStories, edition_id: int, force: bool, forced: list[str]
) -> RenderStories:
    """``render``, with each variant's HTML size checked as the whole edition's is.

    A reader's own digest can be larger than the edition (a weekly reader gets
    the week's stories): one that Gmail would clip refuses the start (the
    edition stays a draft) unless ``force``, when it is added to ``forced``;
    one close to the limit is logged as a warning.
    """

    def checked(stories: Sequence[Story]) -> Rendered:
        rendered = render(stories)
        first = f" from {stories[0].headline!r}" if stories else ""
        what = f"the digest of {len(stories)} stories{first}"
        forced.extend(_judged(size_findings(html_size(rendered.html), what), edition_id, force))
        return rendered

    return checked


def _judged(findings: list[str], edition_id: int, force: bool) -> list[str]:
    """The check's findings acted on: warnings logged, the problems raised as CheckFailed
    unless ``force`` (then returned, to be recorded as forced over)."""
    for warning in warnings(findings):
        log.warning("edition %s: warning: %s", edition_id, warning)
    problems = blocking(findings)
    if problems and not force:
        raise CheckFailed(edition_id, problems)
    return problems


@dataclass(frozen=True)
class Prepared:
    """An edition as its messages are built: what previews, checks and test sends share."""

    view: EditionView
    messages: MessageFactory
    edition_id: int | None  # None for ``next``
    stored: bool  # built from the render stored when the edition started


def prepare_ref(
    settings: Settings, factory: sessionmaker[Session], ref: str, *, test_send: bool = False
) -> Prepared:
    """Edition ``ref`` (an id, 'latest' or 'next') ready to build messages.

    A started edition uses the render stored at its start (templates edited
    since change nothing); a draft and ``next`` render live (RenderError on
    a broken template).
    """
    view, edition_id, stored = _load(factory, ref)
    messages = prepare_edition(settings, view, stored, edition_id, test_send=test_send)
    return Prepared(view, messages, edition_id, stored is not None)


def check_ref(
    settings: Settings, factory: sessionmaker[Session], ref: str
) -> tuple[int | None, list[str]]:
    """The pre-send check of edition ``ref`` (of its stored render once it started).

    Returns the edition's id (None for 'next') and one line per problem; a
    template or MJML failure is a problem, not an error.
    """
    view, edition_id, stored = _load(factory, ref)
    try:
        messages = prepare_edition(settings, view, stored, edition_id)
    except RenderError as exc:
        return edition_id, [*preflight(settings), str(exc)]
    return edition_id, check_edition(settings, view, edition_id, messages)


def _load(
    factory: sessionmaker[Session], ref: str
) -> tuple[EditionView, int | None, Rendered | None]:
    with factory() as s:
        if ref == "next":
            return assemble.view(s, ref), None, None
        edition = assemble.get(s, ref)
        return assemble.view_of(edition), edition.id, stored_render(edition)


def pending_rows(session: Session, edition_id: int) -> int:
    """How many of the edition's rows are pending (left to send)."""
    return lifecycle.counts(session, edition_id).get(DeliveryState.PENDING, 0)


def editions_with_pending(session: Session) -> list[int]:
    """Running editions that still have pending rows due now (what a worker picks up)."""
    return lifecycle.running_editions_with(
        session, Delivery.state == DeliveryState.PENDING, claims.due(utcnow())
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
            editor.release_stories(s, edition_id)  # unsent stories wait for the next edition
    return edition_id, skipped
