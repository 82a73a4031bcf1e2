"""The clock: slot keys, skip rules, catch-up after downtime, two clocks at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from conftest import REFERENCE_STORY, SEEDS, Captured, Cli
from sqlalchemy import func, select

from digest.core.db import make_engine, session_factory, transaction
from digest.core.errors import ConfigError
from digest.core.models import ClockRun, Edition
from digest.core.settings import Settings
from digest.core.status import EditionStatus, RunOutcome
from digest.editions.slots import fire_times, latest_slot, make_trigger, slot_key
from digest.processes import runlog
from digest.processes.jobs import catch_up, run_slot


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/Berlin", datetime(2026, 10, 25)),  # fall back: 02:00-03:00 twice
        ("Europe/Berlin", datetime(2026, 3, 29)),  # spring forward: 02:00-03:00 missing
        ("America/New_York", datetime(2026, 11, 1)),
        ("America/New_York", datetime(2026, 3, 8)),
        ("Asia/Kolkata", datetime(2026, 10, 25)),  # no DST, +05:30
        ("Pacific/Chatham", datetime(2026, 9, 27)),  # +12:45 -> +13:45
        ("Pacific/Chatham", datetime(2026, 4, 5)),
    ],
)
def test_slots_one_key_per_wall_clock_slot_across_dst_transitions(zone: str, day: datetime) -> None:
    tz = ZoneInfo(zone)
    trigger = CronTrigger.from_crontab("*/30 * * * *", timezone=tz)
    start = day.replace(tzinfo=tz) - timedelta(hours=2)
    times = fire_times(trigger, start, start + timedelta(hours=30))
    instants = [t.astimezone(UTC) for t in times]
    assert instants == sorted(set(instants))  # strictly forward, no repeats
    walls = [t.astimezone(tz).replace(tzinfo=None) for t in times]
    keys = [slot_key("*/30 * * * *", zone, t) for t in times]
    # A wall time seen twice (fall-back) shares one key: its second fire is a duplicate.
    assert len(set(keys)) == len(set(walls))
    assert all(t.minute in (0, 30) for t in walls)


def test_slots_latest_slot_is_the_slot_a_late_run_belongs_to() -> None:
    trigger = CronTrigger.from_crontab("0 7 * * *", timezone=ZoneInfo("Europe/Berlin"))
    now = datetime(2026, 11, 24, 7, 3, tzinfo=ZoneInfo("Europe/Berlin"))
    slot = latest_slot(trigger, now)
    assert slot == datetime(2026, 11, 24, 7, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert (
        slot_key("0 7 * * *", "Europe/Berlin", slot) == "0 7 * * *|Europe/Berlin|2026-11-24T07:00"
    )
    weekly = CronTrigger.from_crontab("0 7 * * mon", timezone=UTC)
    assert latest_slot(weekly, datetime(2026, 11, 29, tzinfo=UTC)) == datetime(
        2026, 11, 23, 7, 0, tzinfo=UTC
    )


def _runs(settings: Settings) -> list[tuple[str, str]]:
    engine = make_engine(settings.effective_database_url)
    try:
        with session_factory(engine)() as s:
            return [(r.outcome.value, r.detail) for r in s.scalars(select(ClockRun))]
    finally:
        engine.dispose()


def test_clock_skips_a_slot_with_fewer_stories_than_the_minimum(ready: Cli) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    settings = ready.settings(min_stories=2)
    engine = make_engine(settings.effective_database_url)
    try:
        assert run_slot(settings, session_factory(engine), datetime.now(UTC)) is None
    finally:
        engine.dispose()
    assert _runs(settings) == [("skipped", "1 new stories, fewer than DIGEST_MIN_STORIES=2")]
    assert ready("edition", "list", "--json").output.strip() == "[]"


def test_clock_catch_up_within_grace_runs_the_slot(ready: Cli, captured: Captured) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "early@example.com")
    settings = ready.settings(schedule="0 7 * * *", misfire_grace_seconds=600)
    trigger = CronTrigger.from_crontab("0 7 * * *", timezone=UTC)
    engine = make_engine(settings.effective_database_url)
    try:
        factory = session_factory(engine)
        now = datetime(2026, 11, 24, 7, 5, tzinfo=UTC)
        assert catch_up(settings, factory, trigger, now) == RunOutcome.BUILT
        # A second clock starting a moment later finds the slot done.
        assert catch_up(settings, factory, trigger, now + timedelta(seconds=30)) is None
    finally:
        engine.dispose()
    ready("worker", "--once")  # the clock opened the edition; a worker sends it
    assert len(captured.envelopes) == 1


def test_clock_catch_up_beyond_grace_reports_the_slot_missed(
    ready: Cli, captured: Captured
) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "late@example.com")
    settings = ready.settings(schedule="0 7 * * *", misfire_grace_seconds=600)
    trigger = CronTrigger.from_crontab("0 7 * * *", timezone=UTC)
    engine = make_engine(settings.effective_database_url)
    try:
        factory = session_factory(engine)
        now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        # A brand-new installation has missed nothing.
        assert catch_up(settings, factory, trigger, now) is None
        with transaction(factory) as s:
            runlog.record(s, "digest", RunOutcome.SKIPPED, "yesterday", "k", now)
        assert catch_up(settings, factory, trigger, now) == RunOutcome.MISSED
    finally:
        engine.dispose()
    [_, (outcome, detail)] = _runs(settings)
    assert outcome == "missed" and "digest send --now" in detail
    assert captured.envelopes == []
    assert ready("edition", "list", "--json").output.strip() == "[]"


def test_clock_two_clock_processes_send_one_edition_once(ready: Cli, captured: Captured) -> None:
    """Two `digest schedule --worker` processes started together on one database."""
    ready("stories", "import", str(SEEDS / "stories"))
    ready("subscribers", "import", str(SEEDS / "subscribers.csv"))
    env = {**os.environ, **ready.env, "DIGEST_SCHEDULE": "* * * * *"}
    cmd = [sys.executable, "-m", "digest", "schedule", "--worker"]
    log_paths = [ready.cwd / f"clock{i}.log" for i in range(2)]
    sinks = [path.open("w") for path in log_paths]
    clocks = [subprocess.Popen(cmd, env=env, cwd=ready.cwd, stderr=sink) for sink in sinks]
    # Each clock logs what it decided about the current slot at start.
    decided = ("running it now", "already handled", "another clock took it", "no new stories")
    settings = ready.settings()
    engine = make_engine(settings.effective_database_url)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            logs = [path.read_text() for path in log_paths]
            with session_factory(engine)() as s:
                finished = s.scalar(
                    select(func.count())
                    .select_from(Edition)
                    .where(Edition.status == EditionStatus.FINISHED)
                )
            if finished and all(any(d in text for d in decided) for text in logs):
                break
            time.sleep(0.2)
    finally:
        engine.dispose()
        for clock in clocks:
            clock.send_signal(signal.SIGTERM)
        for clock in clocks:
            clock.wait(timeout=30)
        for sink in sinks:
            sink.close()
        logs = [path.read_text() for path in log_paths]
    assert [clock.returncode for clock in clocks] == [0, 0], "\n----\n".join(logs)
    editions = ready("edition", "list", "--json").output
    assert editions.count('"id"') == 1, editions
    received = sorted(r for _, rcpts, _ in captured.envelopes for r in rcpts)
    assert len(received) == 20 and len(set(received)) == 20


def test_status_shows_a_skipped_slot(ready: Cli) -> None:
    settings = ready.settings(min_stories=3)
    engine = make_engine(settings.effective_database_url)
    try:
        run_slot(settings, session_factory(engine), datetime(2026, 11, 24, 7, 0, tzinfo=UTC))
    finally:
        engine.dispose()
    ready.env["DIGEST_MIN_STORIES"] = "3"
    out = ready("status").output
    assert "last digest run" in out and "(0 7 * * *|UTC|2026-11-24T07:00): skipped" in out
    assert "fewer than DIGEST_MIN_STORIES=3" in out


def test_clock_polls_feeds_and_records_the_outcome(ready: Cli) -> None:
    from feed_server import serve_feeds

    from digest.processes.jobs import poll_feeds

    ready.env["DIGEST_FEED_ALLOW_PRIVATE"] = "true"  # the feed server is on 127.0.0.1
    with serve_feeds() as server:
        ready("feeds", "add", server.url("rss2.xml"), "--backfill", "1")
        ready("feeds", "add", server.url("missing.xml"))  # a 404: recorded, never stops others
        settings = ready.settings()
        engine = make_engine(settings.effective_database_url)
        try:
            assert poll_feeds(settings, session_factory(engine)) == RunOutcome.DONE
        finally:
            engine.dispose()
    [(outcome, detail)] = _runs(settings)
    assert outcome == "done" and detail.startswith("2 feeds, 0 new stories, 1 failed")
    assert "last feeds run" in ready("status").output


def test_clock_process_polls_feeds_when_it_starts(ready: Cli) -> None:
    """The interval job is wired: a started `digest schedule` polls feeds at once."""
    from feed_server import serve_feeds

    ready.env["DIGEST_FEED_ALLOW_PRIVATE"] = "true"  # the feed server is on 127.0.0.1
    env = {**os.environ, **ready.env, "DIGEST_FEED_INTERVAL_MINUTES": "1"}
    log_path = ready.cwd / "clock.log"
    with serve_feeds() as server, log_path.open("w") as sink:
        ready("feeds", "add", server.url("rss2.xml"))
        clock = subprocess.Popen(
            [sys.executable, "-m", "digest", "schedule"], env=env, cwd=ready.cwd, stderr=sink
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "feeds polled" not in log_path.read_text():
                time.sleep(0.2)
        finally:
            clock.send_signal(signal.SIGTERM)
            clock.wait(timeout=30)
    assert "feeds polled: 1 feeds, 0 new stories\n" in log_path.read_text()  # none failed
    assert clock.returncode == 0
    assert "last feeds run" in ready("status").output


@pytest.mark.parametrize(
    ("days", "weekdays"),
    [
        ("1", {"Monday"}),
        ("0", {"Sunday"}),
        ("7", {"Sunday"}),
        ("1-5", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}),
        ("5-7", {"Friday", "Saturday", "Sunday"}),
        ("*/3", {"Sunday", "Wednesday", "Saturday"}),
        ("mon,fri", {"Monday", "Friday"}),
    ],
)
def test_schedule_days_of_the_week_count_as_cron_does(days: str, weekdays: set[str]) -> None:
    # Cron's 1 is Monday and 0 or 7 Sunday (APScheduler's own numbering starts at Monday).
    trigger = make_trigger(Settings(schedule=f"0 7 * * {days}", timezone="UTC"))
    start = datetime(2026, 12, 6, tzinfo=UTC)  # a Sunday
    fired = fire_times(trigger, start, start + timedelta(days=14))
    assert {t.strftime("%A") for t in fired} == weekdays


@pytest.mark.parametrize("days", ["8", "1-9", "3-1", "*/0", "mon-xyz"])
def test_schedule_bad_day_of_the_week_names_the_setting(days: str) -> None:
    with pytest.raises(ConfigError) as refused:
        make_trigger(Settings(schedule=f"0 7 * * {days}", timezone="UTC"))
    assert refused.value.setting == "DIGEST_SCHEDULE"
