"""Changing one stored story by hand: edit its text, hold it back from new editions.

A story may change only while no edition holding it has started sending
(``ingest.is_editable``); it is checked field by field by the rules a story
file follows (``formats.fields``). A held story stays out of the next
editions (``editions.assemble.new_stories``) until it is released; only a story
in no edition yet can be held.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.errors import EditionError, NotFound, SourceError
from digest.core.models import EditionStory, Story
from digest.core.urls import canonical_url
from digest.sources.draft import StoryDraft
from digest.sources.formats import fields
from digest.sources.ingest import is_editable


@dataclass(frozen=True)
class StoryEdit:
    """What the operator may change; bullets one per line, tags comma-separated."""

    headline: str
    summary: str
    bullets: str = ""
    url: str = ""
    tags: str = ""
    priority: str = "0"


class StoryNotFound(NotFound):
    def __init__(self, story_id: int) -> None:
        super().__init__(f"no story with id {story_id}")


def get(session: Session, story_id: int) -> Story:
    story = session.get(Story, story_id)
    if story is None:
        raise StoryNotFound(story_id)
    return story


def held(session: Session) -> list[Story]:
    """The stories held back, in no edition, oldest hold first."""
    placed = select(EditionStory.story_id)
    return list(
        session.scalars(
            select(Story)
            .where(Story.held_at.is_not(None), Story.id.not_in(placed))
            .order_by(Story.held_at, Story.id)
        )
    )


def used(session: Session, count: int = 50) -> list[tuple[Story, int]]:
    """The latest stories editions took, with the edition of each, newest first."""
    rows = session.execute(
        select(Story, EditionStory.edition_id)
        .join(EditionStory, EditionStory.story_id == Story.id)
        .order_by(EditionStory.edition_id.desc(), EditionStory.position)
        .limit(count)
    )
    return [(story, edition_id) for story, edition_id in rows]


def edition_of(session: Session, story: Story) -> int | None:
    """The edition the story is in, if any."""
    return session.scalar(select(EditionStory.edition_id).where(EditionStory.story_id == story.id))


def edit(session: Session, story_id: int, change: StoryEdit) -> Story:
    """Change a story's text; SourceError naming the field if bad, EditionError once sent."""
    story = get(session, story_id)
    if not is_editable(session, story):
        raise EditionError(f"story {story_id} is in an edition that has started sending")
    where = f"story {story_id}"
    try:
        draft = StoryDraft(
            headline=fields.headline(change.headline),
            summary=fields.line(change.summary, "summary"),
            bullets=fields.bullets([b for b in change.bullets.splitlines() if b.strip()]),
            source=story.source,
            url=fields.optional_url(change.url.strip() or None),
            body=story.body,
            tags=fields.tags([t for t in change.tags.split(",") if t.strip()]),
            priority=fields.priority(_whole_number(change.priority)),
        )
    except ValueError as exc:
        raise SourceError(where, str(exc)) from None
    clash = session.scalar(
        select(Story.id).where(Story.content_hash == draft.content_hash, Story.id != story.id)
    )
    if clash is not None:
        raise SourceError(where, f"the same text as story {clash}")
    story.headline, story.summary, story.bullets = (
        draft.headline,
        draft.summary,
        list(draft.bullets),
    )
    story.url = draft.url
    story.canonical_url = canonical_url(draft.url) if draft.url else None
    story.tags, story.priority = list(draft.tags), draft.priority
    story.content_hash = draft.content_hash
    session.flush()
    return story


def _whole_number(text: str) -> int:
    text = text.strip() or "0"
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"priority must be a whole number, found {fields.clip(text)!r}")
    return int(text)


def hold(session: Session, story_id: int, held: bool = True) -> Story:
    """Hold a story back from new editions (``held=False``: release it)."""
    story = get(session, story_id)
    edition = edition_of(session, story)
    if edition is not None:
        raise EditionError(f"story {story_id} is already in edition {edition}", edition)
    story.held_at = utcnow() if held else None
    session.flush()
    return story
