"""A subscriber's preferences: topics (story tags; none means everything) and cadence.

A topic is a story tag, checked and normalised by the rule story tags follow
(``digest.sources.formats.fields.tags``): one line of text, surrounding space
trimmed, at most 50 characters, no control characters, lower-cased. Two
characters more are refused in a topic: ``,`` and ``|``, the separators of
``--topics`` and of the CSV ``topics`` column. A subscriber's topics are
stored sorted, without duplicates; an empty list means every story.

The cadence is ``daily`` or ``weekly`` (``subscribers.status.Cadence``);
weekly digests go out on ``settings.weekly_day``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.errors import SubscriberError
from digest.core.models import Story
from subscribers.models import Subscriber
from subscribers.status import Cadence

MAX_TAG = 50  # as digest.sources.formats.fields.MAX_TAG
MAX_TOPICS = 100
# Unicode line breaks besides LF (digest.sources.formats.fields.LINE_BREAKS).
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
SEPARATORS = ",|"
# The preferences page offers the tags of the stories ingested this recently.
RECENT_TAGS = timedelta(days=90)


def check_tag(raw: str) -> str:
    """One topic as stories carry it (see the module docstring); SubscriberError if bad."""
    tag = raw.strip()
    if not tag:
        raise SubscriberError("", "empty topic")
    bad = next((c for c in tag if c in LINE_BREAKS or (ord(c) < 32 and c != "\t")), None)
    if bad is not None:
        raise SubscriberError("", f"control character U+{ord(bad):04X} in topic {tag!r}")
    if len(tag) > MAX_TAG:
        raise SubscriberError("", f"topic {tag[:20]!r}… longer than {MAX_TAG} characters")
    separator = next((c for c in tag if c in SEPARATORS), None)
    if separator is not None:
        raise SubscriberError("", f"topic {tag!r} contains {separator!r} (a separator of topics)")
    return tag.lower()


def check_topics(raw: Iterable[str]) -> list[str]:
    """Topics sorted, lower-case, without duplicates (empty: everything)."""
    topics = sorted({check_tag(t) for t in raw})
    if len(topics) > MAX_TOPICS:
        raise SubscriberError("", f"more than {MAX_TOPICS} topics ({len(topics)})")
    return topics


def parse_topics(text: str, separator: str = ",") -> list[str]:
    """Topics written as one text (``science,climate``; ``""`` is everything)."""
    return check_topics(t for t in text.split(separator) if t.strip())


def check_cadence(raw: str) -> Cadence:
    """``daily`` or ``weekly`` (any case); SubscriberError naming anything else."""
    word = raw.strip().lower()
    try:
        return Cadence(word)
    except ValueError:
        choices = " or ".join(c.value for c in Cadence)
        raise SubscriberError("", f"unknown cadence {raw.strip()!r} ({choices})") from None


def set_preferences(
    sub: Subscriber, topics: Iterable[str] | None = None, cadence: str | None = None
) -> None:
    """Change what is given (None: unchanged); checks everything before changing anything."""
    clean_topics = check_topics(topics) if topics is not None else None
    clean_cadence = check_cadence(cadence) if cadence is not None else None
    if clean_topics is not None:
        sub.topics = clean_topics
    if clean_cadence is not None:
        sub.cadence = clean_cadence.value


def recent_tags(session: Session, now: datetime | None = None) -> list[str]:
    """The tags of the stories ingested in the last 90 days that can be topics, sorted.

    By ``ingested_at`` (always set, and the time a story could first be mailed),
    not ``published_at`` (missing from many files, as old or new as a feed says).
    """
    since = (now or utcnow()) - RECENT_TAGS
    found: set[str] = set()
    for tags in session.scalars(select(Story.tags).where(Story.ingested_at >= since)):
        found.update(tags or ())
    return sorted(t for t in found if _is_topic(t))


def _is_topic(tag: str) -> bool:
    try:
        return check_tag(tag) == tag
    except SubscriberError:
        return False
