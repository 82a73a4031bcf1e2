"""Each reader's own digest as a send makes it: the dry run, and a preview as one subscriber.

Both use what the send uses: for a draft (or ``next``) the plan a start would
make (``digest.delivery.variants.plan``), for a started edition the ledger
rows and the variants they point at. Nothing is sent or stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import utcnow
from digest.core.errors import EditionError, SubscriberError
from digest.core.models import Delivery, Edition, EditionVariant, Story
from digest.core.settings import Settings
from digest.core.status import DeliveryState, EditionStatus
from digest.delivery import audience, variants
from digest.delivery.sendable import (
    refuse_without_subscribers,
    sendable,
    started_messages,
)
from digest.editions import assemble
from digest.mail.check import CheckFailed, blocking, check_edition
from digest.mail.message import SAMPLE_RECIPIENT, MessageFactory, Recipient, prepare
from digest.render.edition import EditionView, story_views, subject_for
from subscribers import service as subscribers


@dataclass(frozen=True)
class Planned:
    """One recipient of a dry run and what they would get."""

    email: str
    name: str
    subject: str
    headlines: tuple[str, ...]


@dataclass
class DryRun:
    edition: str
    subject: str
    size: int
    stories: int
    recipients: list[Planned] = field(default_factory=list)
    already_done: int = 0
    skipped_nothing_new: int = 0
    skipped_not_due: int = 0


def _stories(session: Session, ids: set[int]) -> dict[int, Story]:
    return {s.id: s for s in session.scalars(select(Story).where(Story.id.in_(list(ids))))}


def _subject(settings: Settings, edition_id: int | None, stories: Sequence[Story]) -> str:
    view = EditionView(edition_id, utcnow(), story_views(stories))
    return subject_for(settings.newsletter_name, view)


def _draft_plan(
    settings: Settings, session: Session, edition: Edition | None, subscriber_id: int | None = None
) -> variants.Plan:
    """What starting ``edition`` (None: the next one) now would give each reader."""
    key = edition.slot_key if edition is not None else None
    weekday = variants.slot_weekday(settings.timezone, None, None, key)
    if edition is None:
        own = assemble.new_stories(session)
        return variants.plan(
            session,
            variants.NEXT,
            utcnow(),
            weekday,
            settings.weekly_day,
            own=own,
            subscriber_id=subscriber_id,
        )
    return variants.plan(
        session,
        edition.id,
        edition.created_at,
        weekday,
        settings.weekly_day,
        subscriber_id=subscriber_id,
    )


def dry_run(
    settings: Settings,
    factory: sessionmaker[Session],
    ref: str,
    force: bool = False,
    retry: DeliveryState | None = None,
) -> DryRun:
    """Whom ``send ref`` would mail now, and each one's subject and stories.

    The recipients come from the queries the real send uses (see
    ``digest.delivery.audience`` and ``variants.plan``), and it refuses where
    the real send refuses (cancelled, paused, no stories, a failed check
    without ``force``, nobody active).
    """
    now = utcnow()
    with factory() as s:
        edition = None if ref == "next" else sendable(s, ref)
        edition_id = edition.id if edition is not None else None
        if edition is None or edition.status == EditionStatus.DRAFT:
            view = assemble.view(s, "next") if edition is None else assemble.view_of(edition)
            messages = prepare(settings, view, edition_id)
            problems = blocking(check_edition(settings, view, edition_id, messages))
            if problems and not force:
                raise CheckFailed(edition_id, problems)
            refuse_without_subscribers(s, edition_id)
            plan = _draft_plan(settings, s, edition)
            by_id = _stories(s, {i for subset in plan.groups for i in subset})
            theirs = {
                r.subscriber_id: subset for subset, group in plan.groups.items() for r in group
            }
            people = []
            for sid, email, name, _ in s.execute(audience.active_subscribers()):
                if sid in theirs:
                    stories = [by_id[i] for i in theirs[sid]]
                    subject = _subject(settings, edition_id, stories)
                    headlines = tuple(st.headline for st in stories)
                    people.append(Planned(email, name, subject, headlines))
            done, empty, not_due = 0, plan.nothing_new, plan.not_due
        else:
            view = assemble.view_of(edition)
            messages = started_messages(settings, edition).whole
            query = audience.due_rows(edition.id, now, also=retry).add_columns(Delivery.variant_id)
            shown: dict[int | None, tuple[str, tuple[str, ...]]] = {}
            people = []
            for _, _, email, name, variant_id in s.execute(query):
                if variant_id not in shown:
                    shown[variant_id] = _variant_summary(settings, s, edition, variant_id, messages)
                people.append(Planned(email, name, *shown[variant_id]))
            done = _done(s, edition.id, retry)
            empty, not_due = edition.skipped_nothing_new or 0, edition.skipped_not_due or 0
    sample = messages.build(SAMPLE_RECIPIENT)
    return DryRun(
        edition=str(edition_id) if edition_id is not None else "next",
        subject=messages.rendered.subject,
        size=len(sample),
        stories=len(view.stories),
        recipients=people,
        already_done=done,
        skipped_nothing_new=empty,
        skipped_not_due=not_due,
    )


def _variant_summary(
    settings: Settings,
    session: Session,
    edition: Edition,
    variant_id: int | None,
    whole: MessageFactory,
) -> tuple[str, tuple[str, ...]]:
    """(subject, headlines) of a started edition's variant, as stored at its start."""
    if variant_id is None:
        return whole.rendered.subject, tuple(st.headline for st in edition.stories)
    ids = variants.variant_story_ids(session, variant_id)
    by_id = _stories(session, set(ids))
    stories = [by_id[i] for i in ids]
    variant = session.get(EditionVariant, variant_id)
    subject = variant.rendered_subject if variant is not None else None
    if subject is None:  # the whole edition's render, or none stored
        whole_ids = [p.story_id for p in edition.placements]
        subject = whole.rendered.subject if ids == whole_ids else None
    subject = subject or _subject(settings, edition.id, stories)
    return subject, tuple(st.headline for st in stories)


def _done(session: Session, edition_id: int, retry: DeliveryState | None) -> int:
    open_states = [DeliveryState.PENDING, DeliveryState.CLAIMED, *([retry] if retry else [])]
    return (
        session.scalar(
            select(func.count()).where(
                Delivery.edition_id == edition_id, Delivery.state.not_in(open_states)
            )
        )
        or 0
    )


def prepare_as(
    settings: Settings, factory: sessionmaker[Session], ref: str, address: str
) -> tuple[MessageFactory, Recipient]:
    """Edition ``ref`` as subscriber ``address`` gets it: their stories, links and topics.

    A started edition shows the variant their delivery was built from; a
    draft or ``next`` the stories a start now would give them. One who gets
    no digest from it is an EditionError saying why.
    """
    with factory() as s:
        who = subscribers.find(s, address)
        if who is None:
            raise SubscriberError(address, "no such subscriber")
        topics = tuple(who.topics or ())
        recipient = Recipient(who.id, who.email, who.name, who.token_version, topics)
        edition = None if ref == "next" else assemble.get(s, ref)
        label = f"edition {edition.id}" if edition is not None else "the next edition"
        if edition is not None and edition.status != EditionStatus.DRAFT:
            variant_id = s.scalar(
                select(Delivery.variant_id).where(
                    Delivery.edition_id == edition.id, Delivery.subscriber_id == who.id
                )
            )
            if variant_id is None and not _has_row(s, edition.id, who.id):
                raise EditionError(
                    f"{label} has no digest for {who.email}: nothing new for them,"
                    " not due (weekly) or not subscribed when it started",
                    edition.id,
                )
            return started_messages(settings, edition, factory).for_variant(variant_id), recipient
        plan = _draft_plan(settings, s, edition, who.id)
        if not plan.groups:
            why = "not due at this slot (a weekly reader)" if plan.not_due else "nothing new"
            if who.status != "active":
                why = f"{who.status}, not active"
            raise EditionError(f"{label} has no digest for {who.email}: {why}")
        (subset,) = plan.groups
        by_id = _stories(s, set(subset))
        number = edition.id if edition is not None else None
        date = edition.created_at if edition is not None else utcnow()
        view = EditionView(number, date, story_views([by_id[i] for i in subset]))
    return prepare(settings, view, number), recipient


def _has_row(session: Session, edition_id: int, subscriber_id: int) -> bool:
    found = session.scalar(
        select(Delivery.id).where(
            Delivery.edition_id == edition_id, Delivery.subscriber_id == subscriber_id
        )
    )
    return found is not None
