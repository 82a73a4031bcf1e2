"""Each reader's own digest: over a week of daily slots, every subscriber gets exactly the
stories that match their topics and cadence, none twice, and nobody an empty digest."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from conftest import Captured, Cli
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker
from subscriber_web import web_app
from test_stored_render import database

from digest.core.db import transaction
from digest.core.models import Edition, EditionVariant
from digest.core.settings import Settings
from digest.delivery import variants
from digest.editions import assemble
from digest.editions.slots import slot_key
from digest.processes.jobs import run_slot
from subscribers.models import Subscriber

MONDAY = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
DAYS = 7
KINDS = {"science": ["science"], "arts": ["arts"], "plain": []}
READERS = {
    "sci@example.com": (["science"], "daily"),
    "all@example.com": ([], "daily"),
    "week@example.com": ([], "weekly"),
}
# The never-twice proof, over the ledger: a (subscriber, story) pair carried by more than
# one delivery that was mailed or may have been.
TWICE = text(
    "SELECT d.subscriber_id, vs.story_id, COUNT(*) FROM deliveries d"
    " JOIN variant_stories vs ON vs.variant_id = d.variant_id"
    " WHERE d.state NOT IN ('failed', 'skipped')"
    " GROUP BY d.subscriber_id, vs.story_id HAVING COUNT(*) > 1"
)


def headline(day: int, kind: str) -> str:
    return f"Day {day} {kind} story"


def write_day(folder: Path, day: int) -> Path:
    """Three stories of one day: science, arts and untagged, in that order in the edition."""
    path = folder / f"day{day}.json"
    items = [
        {
            "headline": headline(day, kind),
            "summary": f"What happened on day {day} in {kind}.",
            "guid": f"day-{day}-{kind}",
            "tags": tags,
            "published": (MONDAY + timedelta(days=day, hours=3 - i)).isoformat(),
        }
        for i, (kind, tags) in enumerate(KINDS.items())
    ]
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def add_readers(cli: Cli, factory: sessionmaker[Session]) -> None:
    for email in READERS:
        cli("subscribers", "add", email)
    with transaction(factory) as s:
        for email, (topics, cadence) in READERS.items():
            s.execute(
                update(Subscriber)
                .where(Subscriber.email == email)
                .values(topics=topics, cadence=cadence)
            )


def headlines_in(message: EmailMessage) -> list[str]:
    """The story headlines of a digest, in the order its text part lists them."""
    body = message.get_body(("plain",))
    assert body is not None
    lines = body.get_content().splitlines()
    return [
        line.split(". ", 1)[1]
        for line in lines
        if ". Day " in line and line.split(". ", 1)[0].strip().isdigit()
    ]


def received(captured: Captured) -> dict[str, list[EmailMessage]]:
    by_reader: dict[str, list[EmailMessage]] = {email: [] for email in READERS}
    for message in captured.messages():
        by_reader[str(message["To"].addresses[0].addr_spec)].append(message)
    return by_reader


def run_week(cli: Cli, factory: sessionmaker[Session], settings: Settings) -> None:
    """Seven daily slots, Monday to Sunday: the day's stories, the clock's slot, a worker."""
    for day in range(DAYS):
        cli("stories", "import", str(write_day(cli.cwd, day)))
        assert run_slot(settings, factory, MONDAY + timedelta(days=day)) is not None
        cli("worker", "--once")


def test_variants_a_week_of_slots_each_reader_gets_their_own_stories_once(
    ready: Cli, captured: Captured
) -> None:
    ready.env["DIGEST_WEEKLY_DAY"] = "6"  # Sunday, the seventh slot
    settings = ready.settings()
    with database(settings) as factory:
        add_readers(ready, factory)
        run_week(ready, factory, settings)
        got = received(captured)

        science = got["sci@example.com"]
        assert [headlines_in(m) for m in science] == [
            [headline(d, "science"), headline(d, "plain")] for d in range(DAYS)
        ]
        everything = got["all@example.com"]
        assert [headlines_in(m) for m in everything] == [
            [headline(d, kind) for kind in KINDS] for d in range(DAYS)
        ]
        (weekly,) = got["week@example.com"]  # one digest, on its day, newest day first
        assert headlines_in(weekly) == [
            headline(d, kind) for d in reversed(range(DAYS)) for kind in KINDS
        ]
        assert all(headlines_in(m) for messages in got.values() for m in messages)

        # The subject names the reader's first story; the header names their topics.
        assert [str(m["Subject"]).split(": ", 1)[1] for m in science] == [
            headline(d, "science") for d in range(DAYS)
        ]
        assert all("Your topics: science" in m.get_body(("plain",)).get_content() for m in science)  # type: ignore[union-attr]
        weekly_text = weekly.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Your topics: everything" in weekly_text
        assert "Change them: http://127.0.0.1:8000/preferences/" in weekly_text

        with factory() as s:
            assert s.execute(TWICE).all() == []
            assert variants.never_twice(s) == []
            editions = s.scalars(select(Edition).order_by(Edition.id)).all()
            # The weekly reader is counted as not due on the six other days.
            assert [e.skipped_not_due for e in editions] == [1] * 6 + [0]
            assert [e.skipped_nothing_new for e in editions] == [0] * DAYS
            # Each edition keeps all of its slot's stories (its archive page shows them).
            assert all(len(e.placements) == len(KINDS) for e in editions)
            # Daily: two subsets per slot (science readers, everyone); Sunday adds the week.
            per_edition = [
                len(
                    s.scalars(select(EditionVariant).where(EditionVariant.edition_id == e.id)).all()
                )
                for e in editions
            ]
            assert per_edition == [2] * 6 + [3]


def test_variants_never_twice_even_when_a_weekly_reader_already_had_stories_daily(
    ready: Cli, captured: Captured
) -> None:
    """A reader switching from daily to weekly mid-week gets only the week's stories they
    were not mailed yet."""
    ready.env["DIGEST_WEEKLY_DAY"] = "2"  # Wednesday, the third slot
    settings = ready.settings()
    with database(settings) as factory:
        ready("subscribers", "add", "switch@example.com")
        for day in range(3):
            if day == 1:
                with transaction(factory) as s:
                    s.execute(update(Subscriber).values(cadence="weekly"))
            ready("stories", "import", str(write_day(ready.cwd, day)))
            run_slot(settings, factory, MONDAY + timedelta(days=day))
            ready("worker", "--once")
        messages = captured.messages()
        assert [headlines_in(m) for m in messages] == [
            [headline(0, kind) for kind in KINDS],  # Monday, still daily
            [headline(d, kind) for d in (2, 1) for kind in KINDS],  # Wednesday: the rest
        ]
        with factory() as s:
            assert s.execute(TWICE).all() == []
            skipped = s.scalars(select(Edition.skipped_not_due).order_by(Edition.id)).all()
            assert skipped == [0, 1, 0]


def test_variants_a_weekly_digest_gmail_would_clip_is_refused_unless_forced(
    ready: Cli, captured: Captured
) -> None:
    """Each day's edition is under Gmail's clipping size, the week of them together is not:
    the weekly reader's own digest is checked, and stops the start like the edition's check."""
    ready.env["DIGEST_WEEKLY_DAY"] = "2"  # Wednesday, the third slot
    settings = ready.settings()
    with database(settings) as factory:
        ready("subscribers", "add", "week@example.com")
        with transaction(factory) as s:
            s.execute(update(Subscriber).values(cadence="weekly"))
        for day in range(3):
            bullets = "".join(f"- Day {day} point {i} {'words ' * 60}\n" for i in range(100))
            path = ready.cwd / f"long{day}.txt"
            path.write_text(f"Long story {day}\nA long story.\n{bullets}", encoding="utf-8")
            ready("stories", "import", str(path))
            run_slot(settings, factory, MONDAY + timedelta(days=day))
            ready("worker", "--once")
        assert ready("check", "3").output == "edition 3: ok\n"  # the edition alone is fine
        assert captured.envelopes == []
        refused = ready("send", "3", ok=False)
        assert refused.exit_code == 1
        assert "edition 3 failed the pre-send check" in refused.output
        found = re.search(
            r"the digest of 3 stories from 'Long story 2' is (\d+) KB as sent", refused.output
        )
        assert found and int(found.group(1)) >= 102, refused.output
        assert "edition 3: draft" in ready("status", "3").output
        forced = ready("send", "3", "--force")
        assert "sent 1, failed 0" in forced.output
        (weekly,) = captured.messages()
        assert "Long story 0" in weekly.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "the digest of 3 stories" in ready("edition", "show", "3").output


def test_variants_a_reader_with_nothing_new_gets_no_digest_and_is_counted(
    ready: Cli, captured: Captured
) -> None:
    settings = ready.settings()
    with database(settings) as factory:
        ready("subscribers", "add", "sports@example.com")
        ready("subscribers", "add", "arts@example.com")
        with transaction(factory) as s:
            s.execute(
                update(Subscriber)
                .where(Subscriber.email == "sports@example.com")
                .values(topics=["sports"])
            )
            s.execute(
                update(Subscriber)
                .where(Subscriber.email == "arts@example.com")
                .values(topics=["arts"])
            )
        folder = ready.cwd / "tagged"
        folder.mkdir()
        story = {"headline": "Opera season opens", "summary": "A full house.", "tags": ["arts"]}
        (folder / "arts.json").write_text(json.dumps(story), encoding="utf-8")
        ready("stories", "import", str(folder))
        ready("edition", "build")
        out = ready("send", "1").output
        assert "no digest for 1 subscribers with nothing new" in out
        assert [m["To"].addresses[0].addr_spec for m in captured.messages()] == ["arts@example.com"]
        status = ready("status", "1").output
        assert "no digest for 1 subscribers with nothing new, 0 weekly readers not due" in status
        assert '"skipped_nothing_new": 1' in ready("status", "1", "--json").output
    with web_app(ready) as web:
        progress = web.client.get("/api/editions/1").json()
        assert (progress["skipped_nothing_new"], progress["skipped_not_due"]) == (1, 0)
        assert progress["variants"] == 1


def test_variants_an_edition_nobody_is_due_for_is_finished_and_mails_nothing(
    ready: Cli, captured: Captured
) -> None:
    ready.env["DIGEST_WEEKLY_DAY"] = "6"  # Sunday; the slot is a Monday
    settings = ready.settings()
    with database(settings) as factory:
        ready("subscribers", "add", "week@example.com")
        with transaction(factory) as s:
            s.execute(update(Subscriber).values(cadence="weekly"))
        ready("stories", "import", str(write_day(ready.cwd, 0)))
        assert run_slot(settings, factory, MONDAY) == 1
        ready("worker", "--once")
        assert captured.envelopes == []
        status = ready("status", "1").output
        assert "edition 1: finished" in status
        assert "no digest for 0 subscribers with nothing new, 1 weekly readers not due" in status


def test_variants_a_slot_edition_sent_by_hand_later_reaches_its_day_s_weekly_readers(
    ready: Cli, captured: Captured
) -> None:
    """A scheduled edition the clock could not open (and an operator sends days later) is
    still its slot's edition: weekly readers due on the slot's day get it, whatever today is."""
    today = datetime.now(UTC)
    slot = (today - timedelta(days=3)).replace(hour=7, minute=0, second=0, microsecond=0)
    ready.env["DIGEST_WEEKLY_DAY"] = str(slot.weekday())
    settings = ready.settings()
    assert settings.weekly_day == slot.weekday() != today.weekday()
    with database(settings) as factory:
        add_readers(ready, factory)
        ready("stories", "import", str(write_day(ready.cwd, 0)))
        with transaction(factory) as s:
            built = assemble.build(s, slot_key=slot_key(settings.schedule, settings.timezone, slot))
            assert built is not None
        dry = ready("send", str(built.id), "--dry-run").output
        assert "week@example.com" in dry and "not due" not in dry
        assert "sent 3, failed 0" in ready("send", str(built.id)).output
    assert {email: len(got) for email, got in received(captured).items()} == {
        "sci@example.com": 1,
        "all@example.com": 1,
        "week@example.com": 1,
    }
