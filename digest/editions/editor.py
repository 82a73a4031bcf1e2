"""Editing a draft: its subject, its intro, which stories it holds and in what order.

Only a draft is editable: sending stores the render, and what was sent stays
as it was. A story taken out of a draft (removed, the draft deleted, or an
edition cancelled before anyone got it) goes back to the pool of new stories,
so the next edition takes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from digest.core.errors import DigestError, EditionError
from digest.core.models import ClockRun, Delivery, Edition, EditionStory
from digest.core.status import DeliveryState, EditionStatus
from digest.editions import assemble
from digest.render.edition import CONTROL_RE

MAX_SUBJECT = 200
MAX_INTRO = 5_000
# A delivery in one of these states may have reached its reader.
REACHED = (
    DeliveryState.CLAIMED,
    DeliveryState.SENDING,
    DeliveryState.SENT,
    DeliveryState.UNKNOWN,
)


@dataclass(frozen=True)
class DraftChanges:
    """What the operator asks of a draft. ``order`` lists the story ids to keep, in order."""

    subject: str
    intro: str
    order: Sequence[int]


def draft(session: Session, edition_id: int) -> Edition:
    """Edition ``edition_id``, refused unless it is a draft."""
    edition = assemble.get(session, str(edition_id))
    if edition.status != EditionStatus.DRAFT:
        raise EditionError(
            f"edition {edition_id} is {edition.status}, not a draft: only drafts can be edited",
            edition_id,
        )
    return edition


def clean_subject(subject: str) -> str | None:
    """The subject to store (None: the generated one); one line, at most MAX_SUBJECT characters."""
    subject = " ".join(CONTROL_RE.sub(" ", subject).split())
    if len(subject) > MAX_SUBJECT:
        raise DigestError(f"subject is {len(subject)} characters: at most {MAX_SUBJECT}")
    return subject or None


def clean_intro(intro: str) -> str | None:
    intro = intro.replace("\r\n", "\n").strip()
    if len(intro) > MAX_INTRO:
        raise DigestError(f"intro is {len(intro)} characters: at most {MAX_INTRO}")
    return intro or None


def edit(session: Session, edition_id: int, changes: DraftChanges) -> Edition:
    """Apply ``changes`` to draft ``edition_id``; stories not in ``order`` return to the pool."""
    edition = draft(session, edition_id)
    subject, intro = clean_subject(changes.subject), clean_intro(changes.intro)
    present = [p.story_id for p in edition.placements]
    order = list(dict.fromkeys(changes.order))
    strangers = [story_id for story_id in order if story_id not in present]
    if strangers:
        raise DigestError(f"story {strangers[0]} is not in edition {edition_id}")
    if not order:
        raise DigestError(f"edition {edition_id} would have no stories: delete the draft instead")
    edition.subject, edition.intro = subject, intro
    if order != present:
        session.execute(delete(EditionStory).where(EditionStory.edition_id == edition_id))
        session.flush()
        for position, story_id in enumerate(order):
            session.add(EditionStory(edition_id=edition_id, position=position, story_id=story_id))
    session.flush()
    session.expire(edition)
    return edition


def delete_draft(session: Session, edition_id: int) -> int:
    """Delete draft ``edition_id``; its stories go back to the pool. Returns how many."""
    edition = draft(session, edition_id)
    released = len(edition.placements)
    session.execute(delete(EditionStory).where(EditionStory.edition_id == edition_id))
    # A clock run that built it keeps its record, without the edition.
    session.execute(
        update(ClockRun).where(ClockRun.edition_id == edition_id).values(edition_id=None)
    )
    session.execute(delete(Delivery).where(Delivery.edition_id == edition_id))
    session.execute(delete(Edition).where(Edition.id == edition_id))
    session.flush()
    return released


def release_stories(session: Session, edition_id: int) -> int:
    """A cancelled edition's stories back to the pool, when none of its messages went out.

    Returns how many stories went back (0 when someone may have received them:
    those stay with the edition they were sent in).
    """
    reached = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.state.in_(REACHED))
    )
    if reached:
        return 0
    result = session.execute(delete(EditionStory).where(EditionStory.edition_id == edition_id))
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)
