"""Assembling editions from new stories, and finding editions by reference."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from digest.core.db import utcnow
from digest.core.errors import BadEditionRef, EditionNotFound
from digest.core.models import MAX_ID, Delivery, Edition, EditionStory, Story
from digest.core.status import DeliveryState
from digest.render.edition import EditionView, story_views
from digest.sources.formats.markdown import render_body


def new_stories(session: Session) -> Sequence[Story]:
    """Stories in no edition yet and not held back, in the order an edition would list them:
    higher ``priority`` first (pinned), then newest first (published, else ingested)."""
    placed = select(EditionStory.story_id)
    newest = func.coalesce(Story.published_at, Story.ingested_at)
    return session.scalars(
        select(Story)
        .where(Story.id.not_in(placed), Story.held_at.is_(None))
        .order_by(Story.priority.desc(), newest.desc(), Story.id.desc())
    ).all()


def list_stories(
    session: Session,
    only_new: bool = False,
    *,
    after_id: int | None = None,
    limit: int | None = None,
) -> Sequence[Story]:
    """Every story in id order, or (``only_new``) those the next edition would take.

    With ``after_id`` or ``limit`` (one page, keyset) the order is always by id;
    ``only_new`` then keeps the stories in no edition and not held back.
    """
    if only_new and after_id is None and limit is None:
        return new_stories(session)
    query = select(Story).order_by(Story.id)
    if only_new:
        query = query.where(Story.id.not_in(select(EditionStory.story_id)), Story.held_at.is_(None))
    if after_id is not None:
        query = query.where(Story.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()


def build(session: Session, slot_key: str | None = None) -> Edition | None:
    """Put every new story into a new draft edition; None when there is nothing new.

    A ``slot_key`` (scheduled editions) is UNIQUE: a second build for the same
    slot fails with IntegrityError instead of making a second edition.
    """
    stories = new_stories(session)
    if not stories:
        return None
    edition = Edition(created_at=utcnow(), slot_key=slot_key)
    session.add(edition)
    session.flush()
    for position, story in enumerate(stories):
        session.add(EditionStory(edition_id=edition.id, position=position, story_id=story.id))
    session.flush()
    session.refresh(edition)
    return edition


def latest_id(session: Session) -> int | None:
    return session.scalar(select(Edition.id).order_by(Edition.id.desc()).limit(1))


def get(session: Session, ref: str) -> Edition:
    """An edition by id, or ``latest`` (the newest); EditionNotFound when there is none."""
    query = select(Edition).options(
        selectinload(Edition.placements).selectinload(EditionStory.story)
    )
    if ref == "latest":
        edition = session.scalar(query.order_by(Edition.id.desc()).limit(1))
        if edition is None:
            raise EditionNotFound("no editions yet: run `digest edition build` first")
        return edition
    if not (ref.isascii() and ref.isdigit()):  # isdigit() alone takes '²'
        raise BadEditionRef(f"not an edition id: {ref!r} (use a number or 'latest')")
    if int(ref) > MAX_ID:  # no such row, and a database would refuse the number
        raise EditionNotFound(f"no edition with id {ref}")
    edition = session.scalar(query.where(Edition.id == int(ref)))
    if edition is None:
        raise EditionNotFound(f"no edition with id {ref}", int(ref))
    return edition


def view(session: Session, ref: str) -> EditionView:
    """What to render for ``ref``: a stored edition, or ``next`` (the new stories, unsaved)."""
    if ref == "next":
        stories = new_stories(session)
        if not stories:
            raise EditionNotFound("no new stories: nothing for a next edition")
        return EditionView(number=None, date=utcnow(), stories=story_views(stories))
    return view_of(get(session, ref))


def view_of(edition: Edition, stories: Sequence[Story] | None = None) -> EditionView:
    """The edition as templates see it; ``stories``: only those (a variant), in that order.
    A subject and intro the operator set apply to every variant."""
    intro = render_body(edition.intro) if edition.intro else None
    shown = edition.stories if stories is None else stories
    return EditionView(edition.id, edition.created_at, story_views(shown), edition.subject, intro)


def list_editions(session: Session) -> list[tuple[Edition, int, dict[str, int]]]:
    """Each edition with its story count and delivery counts by state."""
    editions = session.scalars(select(Edition).order_by(Edition.id)).all()
    counts: dict[int, dict[str, int]] = {}
    for edition_id, state, n in session.execute(
        select(Delivery.edition_id, Delivery.state, func.count()).group_by(
            Delivery.edition_id, Delivery.state
        )
    ):
        counts.setdefault(edition_id, {})[DeliveryState(state).value] = n
    story_counts: dict[int, int] = {
        edition_id: n
        for edition_id, n in session.execute(
            select(EditionStory.edition_id, func.count()).group_by(EditionStory.edition_id)
        )
    }
    return [(e, story_counts.get(e.id, 0), counts.get(e.id, {})) for e in editions]
