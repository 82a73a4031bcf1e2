"""Story selection (digest.editions.personal): which stories a reader gets, as properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from digest.editions.personal import (
    DAILY,
    WEEKLY,
    Candidate,
    is_due,
    matches,
    select_stories,
)

TAGS = st.sampled_from(["science", "arts", "sports", "city"])
TOPICS = st.lists(TAGS, unique=True, max_size=3)
CADENCE = st.sampled_from([DAILY, WEEKLY])
CURRENT = 9


@st.composite
def candidates(draw: st.DrawFn) -> list[Candidate]:
    """Stories of the current edition and up to six earlier ones, each story in one edition."""
    n = draw(st.integers(0, 25))
    found = []
    for story_id in range(1, n + 1):
        edition = draw(st.integers(CURRENT - 6, CURRENT))
        tags = frozenset(draw(st.lists(TAGS, unique=True, max_size=2)))
        found.append(Candidate(story_id, tags, edition, story_id))
    return draw(st.permutations(found))


@given(TOPICS, CADENCE, candidates(), st.sets(st.integers(1, 25)))
def test_personal_selection_is_exactly_the_matching_unmailed_stories_newest_edition_first(
    topics: list[str], cadence: str, stories: list[Candidate], mailed: set[int]
) -> None:
    got = select_stories(topics, cadence, stories, mailed, CURRENT)
    reach = [c for c in stories if cadence == WEEKLY or c.edition_id == CURRENT]
    expected = {
        c.story_id
        for c in reach
        if c.story_id not in mailed and (not c.tags or not topics or c.tags & set(topics))
    }
    assert set(got) == expected
    assert len(got) == len(set(got))  # never one story twice in a digest
    by_id = {c.story_id: c for c in stories}
    order = [(-by_id[i].edition_id, by_id[i].position) for i in got]
    assert order == sorted(order)


@given(TOPICS, st.frozensets(TAGS, max_size=3))
def test_personal_matches_when_untagged_unfiltered_or_sharing_a_tag(
    topics: list[str], tags: frozenset[str]
) -> None:
    assert matches(topics, tags) == (not tags or not topics or bool(tags & set(topics)))


def test_personal_untagged_stories_go_to_everyone_and_topics_filter_the_rest() -> None:
    stories = [
        Candidate(1, frozenset({"science"}), CURRENT),
        Candidate(2, frozenset({"arts"}), CURRENT, 1),
        Candidate(3, frozenset(), CURRENT, 2),
    ]
    assert select_stories(["science"], DAILY, stories, set(), CURRENT) == (1, 3)
    assert select_stories([], DAILY, stories, set(), CURRENT) == (1, 2, 3)
    assert select_stories(["sports"], DAILY, stories, set(), CURRENT) == (3,)
    assert select_stories(["sports"], DAILY, stories, {3}, CURRENT) == ()


def test_personal_a_daily_reader_gets_only_the_slot_and_a_weekly_one_the_week() -> None:
    stories = [Candidate(1, frozenset(), CURRENT - 1), Candidate(2, frozenset(), CURRENT)]
    assert select_stories([], DAILY, stories, set(), CURRENT) == (2,)
    assert select_stories([], WEEKLY, stories, set(), CURRENT) == (2, 1)
    assert select_stories([], WEEKLY, stories, {1}, CURRENT) == (2,)


@given(CADENCE, st.integers(0, 6), st.integers(0, 6))
def test_personal_daily_readers_are_always_due_weekly_ones_on_their_day(
    cadence: str, weekday: int, weekly_day: int
) -> None:
    assert is_due(cadence, weekday, weekly_day) == (cadence == DAILY or weekday == weekly_day)
