"""Which stories a subscriber gets: pure decisions, no database.

A story matches a subscriber when it shares a tag with their topics; an
untagged story goes to everyone, and so does every story to a subscriber with
no topics. A daily reader is due at every slot and gets the matching stories
of the slot's edition; a weekly reader is due only at the slot on the weekly
day and then gets the matching stories of the week's editions, newest edition
first. Either way a story already mailed to them is left out, and a reader
left with nothing gets no digest at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

DAILY = "daily"
WEEKLY = "weekly"
WEEK_DAYS = 7  # how far back a weekly digest reaches, in days


@dataclass(frozen=True)
class Candidate:
    """A story a slot could carry: its id, tags and edition (the slot's own, or earlier)."""

    story_id: int
    tags: frozenset[str]
    edition_id: int
    position: int = 0


def matches(topics: Collection[str], tags: Collection[str]) -> bool:
    """A story goes to a reader when it is untagged, the reader wants everything, or they
    share a tag."""
    return not tags or not topics or not set(topics).isdisjoint(tags)


def is_due(cadence: str, weekday: int, weekly_day: int) -> bool:
    """Whether a reader gets a digest at a slot on ``weekday`` (0 = Monday)."""
    return cadence != WEEKLY or weekday == weekly_day


def in_order(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Newest edition first, each edition's stories in their places."""
    return sorted(candidates, key=lambda c: (-c.edition_id, c.position))


def select_stories(
    topics: Collection[str],
    cadence: str,
    candidates: Sequence[Candidate],
    mailed: Collection[int],
    edition_id: int,
) -> tuple[int, ...]:
    """The ids of the stories a due reader gets at edition ``edition_id``'s slot, in order.

    ``candidates``: the slot's stories and (for weekly readers) the week's
    earlier ones; ``mailed``: story ids already mailed (or on their way) to
    this reader. An empty result means no digest for them.
    """
    wanted = [
        c
        for c in in_order(candidates)
        if (cadence == WEEKLY or c.edition_id == edition_id)
        and c.story_id not in mailed
        and matches(topics, c.tags)
    ]
    return tuple(dict.fromkeys(c.story_id for c in wanted))
