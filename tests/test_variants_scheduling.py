"""Personal digests through the scheduler's other paths: local-time delivery (weekly readers
on their day in their own zone) and the queue (chunks of an edition's variants)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from conftest import Captured, Cli
from sqlalchemy import select, update
from test_stored_render import database
from test_variants import KINDS, TWICE, headline, headlines_in, write_day

from digest.core.db import transaction, utcnow
from digest.core.models import Delivery, Edition
from digest.editions.slots import local_instant
from digest.processes.jobs import local_tick, run_slot
from subscribers.models import Subscriber

ZONES = {"here@example.com": None, "behind@example.com": "Etc/GMT+5"}  # UTC, UTC-5


@pytest.mark.parametrize("on_their_day", [True, False])
def test_variants_local_time_weekly_readers_wait_for_their_zone_on_their_day(
    ready: Cli, captured: Captured, on_their_day: bool
) -> None:
    now = utcnow()
    slot = now - timedelta(minutes=30)
    wall = slot.replace(tzinfo=None, second=0, microsecond=0)  # the newest slot wall time
    day = wall.weekday() if on_their_day else (wall.weekday() + 1) % 7
    ready.env["DIGEST_WEEKLY_DAY"] = str(day)
    settings = ready.settings(
        schedule=f"{slot.minute} {slot.hour} * * *", local_time=True, misfire_grace_seconds=3600
    )
    with database(settings) as factory:
        ready("stories", "import", str(write_day(ready.cwd, 0)))
        for email, zone in ZONES.items():
            ready("subscribers", "add", email, *(["--timezone", zone] if zone else []))
        ready("subscribers", "add", "daily@example.com")
        with transaction(factory) as s:
            s.execute(
                update(Subscriber).where(Subscriber.email.in_(list(ZONES))).values(cadence="weekly")
            )
        assert local_tick(settings, factory, now) == 1
        ready("worker", "--once")
        with factory() as s:
            waits = dict(
                s.execute(
                    select(Subscriber.email, Delivery.not_before).join(
                        Subscriber, Subscriber.id == Delivery.subscriber_id
                    )
                ).all()
            )
            not_due = s.scalar(select(Edition.skipped_not_due))
        sent = [r for _, rcpts, _ in captured.envelopes for r in rcpts]
        if on_their_day:
            assert waits["behind@example.com"] == local_instant(wall, "Etc/GMT+5")
            assert set(waits) == {"here@example.com", "behind@example.com", "daily@example.com"}
            assert sorted(sent) == ["daily@example.com", "here@example.com"]  # behind: later
            assert not_due == 0
        else:
            assert set(waits) == {"daily@example.com"}
            assert sent == ["daily@example.com"]
            assert not_due == 2


def test_variants_the_queue_sends_each_reader_their_variant_once(
    ready: Cli, captured: Captured, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("procrastinate runs on PostgreSQL only")
    ready.env |= {"DIGEST_QUEUE": "procrastinate", "DIGEST_QUEUE_CHUNK": "1"}
    ready.env["DIGEST_WEEKLY_DAY"] = "2"  # Wednesday, the third slot
    settings = ready.settings()
    monday = utcnow().replace(year=2026, month=11, day=30, hour=7, minute=0)
    with database(settings) as factory:
        for email in ("sci@example.com", "week@example.com"):
            ready("subscribers", "add", email)
        with transaction(factory) as s:
            s.execute(
                update(Subscriber)
                .where(Subscriber.email == "sci@example.com")
                .values(topics=["science"])
            )
            s.execute(
                update(Subscriber)
                .where(Subscriber.email == "week@example.com")
                .values(cadence="weekly")
            )
        env = {**os.environ, **ready.env}
        for day in range(3):
            ready("stories", "import", str(write_day(ready.cwd, day)))
            assert run_slot(settings, factory, monday + timedelta(days=day)) is not None
            worker = subprocess.run(
                [sys.executable, "-m", "digest", "worker", "--once"],
                cwd=ready.cwd,
                env=env,
                capture_output=True,
                timeout=120,
            )
            assert worker.returncode == 0, worker.stderr.decode()
        got: dict[str, list[list[str]]] = {}
        for message in captured.messages():
            got.setdefault(message["To"].addresses[0].addr_spec, []).append(headlines_in(message))
        assert got == {
            "sci@example.com": [[headline(d, "science"), headline(d, "plain")] for d in range(3)],
            "week@example.com": [[headline(d, k) for d in (2, 1, 0) for k in KINDS]],
        }
        with factory() as s:
            assert s.execute(TWICE).all() == []
