"""Each reader's own digest at an edition's start: story subsets grouped into variants.

``plan`` works out every active subscriber's stories (``digest.editions.personal``
decides: their topics, their cadence, minus what the ledger says was mailed to
them already) and groups the subscribers with the same subset; ``store`` writes
one ``edition_variants`` row per subset, rendered once, with its stories in
``variant_stories``. ``lifecycle.start`` does both in the transaction that
creates the ledger rows, each pointing at its variant. A subscriber with no
story is given no row and counted (``Edition.skipped_nothing_new``), as are
weekly readers on another day (``skipped_not_due``).

Never twice: a story counts as mailed to a reader once a delivery of theirs
carrying it exists in any state but ``failed`` or ``skipped`` (``never_twice``
is the ledger query that checks it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Text, cast, func, insert, select
from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.models import (
    MAX_ID,
    Delivery,
    Edition,
    EditionStory,
    EditionVariant,
    Story,
    VariantStory,
)
from digest.core.status import DeliveryState, EditionStatus
from digest.delivery import audience
from digest.editions.personal import (
    DAILY,
    WEEK_DAYS,
    WEEKLY,
    Candidate,
    is_due,
    select_stories,
)
from digest.editions.slots import slot_date
from digest.render.edition import Rendered, render_columns
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus

RenderStories = Callable[[Sequence[Story]], Rendered]
"""Renders a variant's stories (in order) as the edition's digest."""

NOT_MAILED = (DeliveryState.FAILED, DeliveryState.SKIPPED)
SENT_EDITIONS = (EditionStatus.RUNNING, EditionStatus.PAUSED, EditionStatus.FINISHED)
NEXT = MAX_ID  # the edition id `next` plans with: newer than every stored one


class Reader(NamedTuple):
    subscriber_id: int
    zone: str | None
    topics: tuple[str, ...]
    cadence: str


@dataclass
class Plan:
    """Who gets which stories at one slot: subset -> readers, and who gets nothing."""

    groups: dict[tuple[int, ...], list[Reader]] = field(default_factory=dict)
    nothing_new: int = 0
    not_due: int = 0


def slot_weekday(
    zone: str, local_slot: datetime | None, slot: datetime | None, slot_key: str | None = None
) -> int:
    """The slot's day of the week (0 = Monday): a local-time slot's own wall date (the
    same date in every reader's zone), else the slot's date in ``zone``, else the date
    in the edition's ``slot_key`` (a scheduled edition sent by hand later is still its
    slot's edition, so weekly readers are due on its day, not on the day of the send),
    else today's in ``zone``."""
    if local_slot is not None:
        return local_slot.weekday()
    if slot is None:
        day = slot_date(slot_key)
        if day is not None:
            return day.weekday()
    return (slot or utcnow()).astimezone(ZoneInfo(zone)).weekday()


def readers(session: Session, subscriber_id: int | None = None) -> list[Reader]:
    """Active subscribers (or the one with ``subscriber_id``) as a plan needs them."""
    # Topics as their JSON text, parsed once per distinct list: most readers share a few.
    query = audience.active_subscribers().with_only_columns(
        Subscriber.id, Subscriber.timezone, cast(Subscriber.topics, Text), Subscriber.cadence
    )
    if subscriber_id is not None:
        query = query.where(Subscriber.id == subscriber_id)
    parsed: dict[str | None, tuple[str, ...]] = {}
    found = []
    for sid, zone, raw, cadence in session.execute(query):
        topics = parsed.get(raw)
        if topics is None:
            topics = parsed[raw] = tuple(json.loads(raw) if raw else ())
        found.append(Reader(sid, zone, topics, cadence or DAILY))
    return found


def week_editions(session: Session, edition_id: int, created_at: datetime) -> list[int]:
    """The sent editions of the week before edition ``edition_id`` (a weekly digest's reach)."""
    return list(
        session.scalars(
            select(Edition.id).where(
                Edition.id < edition_id,
                Edition.status.in_(SENT_EDITIONS),
                Edition.created_at >= created_at - timedelta(days=WEEK_DAYS),
            )
        )
    )


def candidates(
    session: Session, edition_ids: Sequence[int], own: Sequence[Story] = (), own_id: int = NEXT
) -> list[Candidate]:
    """The stories of these editions (and ``own``, the unsaved next edition's) as candidates."""
    found = [
        Candidate(story_id, frozenset(tags or ()), edition_id, position)
        for edition_id, position, story_id, tags in session.execute(
            select(EditionStory.edition_id, EditionStory.position, Story.id, Story.tags)
            .join(Story, Story.id == EditionStory.story_id)
            .where(EditionStory.edition_id.in_(list(edition_ids)))
        )
    ]
    found += [Candidate(s.id, frozenset(s.tags or ()), own_id, i) for i, s in enumerate(own)]
    return found


def mailed(
    session: Session, story_ids: Sequence[int], subscriber_id: int | None = None
) -> dict[int, set[int]]:
    """subscriber id -> those of ``story_ids`` already mailed (or on their way) to them.

    Only weekly readers' rows are read (a daily reader's candidates are new
    stories), in one query whatever the number of readers.
    """
    if not story_ids:
        return {}
    weekly = select(Subscriber.id).where(
        Subscriber.cadence == WEEKLY, Subscriber.status == SubscriberStatus.ACTIVE
    )
    query = (
        select(Delivery.subscriber_id, VariantStory.story_id)
        .join(VariantStory, VariantStory.variant_id == Delivery.variant_id)
        .where(
            VariantStory.story_id.in_(list(story_ids)),
            Delivery.state.not_in(NOT_MAILED),
            Delivery.subscriber_id.in_(weekly),
        )
    )
    if subscriber_id is not None:
        query = query.where(Delivery.subscriber_id == subscriber_id)
    got: dict[int, set[int]] = {}
    for sid, story_id in session.execute(query):
        got.setdefault(sid, set()).add(story_id)
    return got


def plan(
    session: Session,
    edition_id: int,
    created_at: datetime,
    weekday: int,
    weekly_day: int,
    *,
    own: Sequence[Story] = (),
    subscriber_id: int | None = None,
) -> Plan:
    """Every active subscriber's (or just ``subscriber_id``'s) stories at this slot.

    ``edition_id`` is the slot's edition (``NEXT`` with its unsaved stories in ``own``).
    """
    people = readers(session, subscriber_id)
    due = [r for r in people if is_due(r.cadence, weekday, weekly_day)]
    result = Plan(not_due=len(people) - len(due))
    weekly = any(r.cadence == WEEKLY for r in due)
    earlier = week_editions(session, edition_id, created_at) if weekly else []
    stories = candidates(session, [edition_id, *earlier], own, edition_id)
    older = [c.story_id for c in stories if c.edition_id != edition_id]
    done = mailed(session, older, subscriber_id) if weekly else {}
    # Readers with nothing in the ledger share their subset with everyone of the same
    # topics and cadence: decide once per such pair, not once per subscriber.
    shared: dict[tuple[tuple[str, ...], str], tuple[int, ...]] = {}
    for r in due:
        theirs = done.get(r.subscriber_id)
        if theirs:
            subset = select_stories(r.topics, r.cadence, stories, theirs, edition_id)
        else:
            key = (r.topics, r.cadence)
            if key not in shared:
                shared[key] = select_stories(r.topics, r.cadence, stories, (), edition_id)
            subset = shared[key]
        if subset:
            result.groups.setdefault(subset, []).append(r)
        else:
            result.nothing_new += 1
    return result


def store(
    session: Session,
    edition: Edition,
    groups: dict[tuple[int, ...], list[Reader]],
    render: RenderStories | None,
) -> dict[tuple[int, ...], int]:
    """One variant per subset (rendered once, unless it is the whole edition); subset -> id.

    Without ``render`` a partial variant is stored unrendered and renders live
    from its stories when sent.
    """
    whole = tuple(p.story_id for p in edition.placements)
    wanted = {sid for subset in groups for sid in subset}
    by_id = {s.id: s for s in session.scalars(select(Story).where(Story.id.in_(list(wanted))))}
    ids: dict[tuple[int, ...], int] = {}
    links: list[dict[str, Any]] = []
    for subset in groups:
        columns: dict[str, object] = {}
        if render is not None and subset != whole:
            columns = render_columns(render([by_id[sid] for sid in subset]))
        variant_id = session.execute(
            insert(EditionVariant)
            .values(edition_id=edition.id, **columns)
            .returning(EditionVariant.id)
        ).scalar_one()
        ids[subset] = variant_id
        links += [
            {"variant_id": variant_id, "position": i, "story_id": sid}
            for i, sid in enumerate(subset)
        ]
    if links:
        session.execute(insert(VariantStory), links)
    return ids


def variant_story_ids(session: Session, variant_id: int) -> list[int]:
    return list(
        session.scalars(
            select(VariantStory.story_id)
            .where(VariantStory.variant_id == variant_id)
            .order_by(VariantStory.position)
        )
    )


def never_twice(session: Session) -> list[tuple[int, int, int]]:
    """(subscriber id, story id, deliveries) for every story the ledger says went to one
    reader more than once: empty when no story reached anyone twice."""
    carried = func.count(Delivery.id)
    return [
        (sid, story_id, n)
        for sid, story_id, n in session.execute(
            select(Delivery.subscriber_id, VariantStory.story_id, carried)
            .join(VariantStory, VariantStory.variant_id == Delivery.variant_id)
            .where(Delivery.state.not_in(NOT_MAILED))
            .group_by(Delivery.subscriber_id, VariantStory.story_id)
            .having(carried > 1)
        )
    ]
