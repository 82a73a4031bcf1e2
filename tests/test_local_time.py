"""Local-time delivery: each subscriber gets the slot at its wall-clock time in their zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import REFERENCE_STORY, Captured, Cli
from sqlalchemy import select, update

from digest.core.db import make_engine, session_factory, transaction, utcnow
from digest.core.models import Delivery
from digest.delivery import lifecycle, service
from digest.editions import assemble
from digest.editions.slots import local_instant
from digest.processes.jobs import local_tick
from digest.transports.smtp import SmtpTransport
from subscribers.models import Subscriber


@pytest.mark.parametrize(
    ("wall", "zone", "expected_utc"),
    [
        (datetime(2026, 1, 15, 7, 0), "Europe/Berlin", datetime(2026, 1, 15, 6, 0)),
        (datetime(2026, 7, 15, 7, 0), "Europe/Berlin", datetime(2026, 7, 15, 5, 0)),
        (datetime(2026, 3, 8, 7, 0), "America/New_York", datetime(2026, 3, 8, 11, 0)),  # DST day
        (datetime(2026, 3, 7, 7, 0), "America/New_York", datetime(2026, 3, 7, 12, 0)),
        (datetime(2026, 11, 1, 7, 0), "America/New_York", datetime(2026, 11, 1, 12, 0)),
        (datetime(2026, 6, 1, 7, 0), "Asia/Kolkata", datetime(2026, 6, 1, 1, 30)),
        (datetime(2026, 9, 27, 7, 0), "Pacific/Chatham", datetime(2026, 9, 26, 17, 15)),  # +13:45
        (datetime(2026, 9, 26, 7, 0), "Pacific/Chatham", datetime(2026, 9, 25, 18, 15)),  # +12:45
        # 02:30 does not exist in Berlin on 2026-03-29: an hour later on the clock.
        (datetime(2026, 3, 29, 2, 30), "Europe/Berlin", datetime(2026, 3, 29, 1, 30)),
        # 02:30 happens twice on 2026-10-25: the first time.
        (datetime(2026, 10, 25, 2, 30), "Europe/Berlin", datetime(2026, 10, 25, 0, 30)),
    ],
)
def test_local_instant_is_the_wall_time_in_the_zone_across_dst(
    wall: datetime, zone: str, expected_utc: datetime
) -> None:
    assert local_instant(wall, zone) == expected_utc.replace(tzinfo=UTC)


def _add(cli: Cli, email: str, zone: str | None) -> None:
    args = ["subscribers", "add", email] + (["--timezone", zone] if zone else [])
    cli(*args)


def test_local_time_rows_wait_for_their_zone_and_a_worker_sends_them_later(
    ready: Cli, captured: Captured
) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    _add(ready, "utc@example.com", None)  # no zone: DIGEST_TIMEZONE (UTC)
    _add(ready, "kolkata@example.com", "Asia/Kolkata")  # +05:30: reached long ago
    _add(ready, "west@example.com", "America/Chicago")  # -05/-06: hours from now
    ready("edition", "build")
    settings = ready.settings()
    wall = (utcnow() - timedelta(hours=1)).replace(tzinfo=None, second=0, microsecond=0)
    engine = make_engine(settings.effective_database_url)
    factory = session_factory(engine)
    try:
        summary = service.send_edition(
            settings, factory, "1", SmtpTransport.from_settings(settings), local_slot=wall
        )
        assert summary.sent == 2
        assert sorted(r for _, rcpts, _ in captured.envelopes for r in rcpts) == [
            "kolkata@example.com",
            "utc@example.com",
        ]
        with factory() as s:
            waits = dict(
                s.execute(
                    select(Subscriber.email, Delivery.not_before).join(
                        Subscriber, Subscriber.id == Delivery.subscriber_id
                    )
                ).all()
            )
            assert waits["west@example.com"] == local_instant(wall, "America/Chicago")
            assert service.editions_with_pending(s) == []  # nothing due yet
        assert "running" in ready("status", "1").output
        # Time passes: the Chicago subscriber's 07:00 arrives.
        with transaction(factory) as s:
            s.execute(update(Delivery).values(not_before=utcnow() - timedelta(seconds=1)))
    finally:
        engine.dispose()
    out = ready("worker", "--once").output
    assert "sent 1, failed 0" in out
    assert len(captured.envelopes) == 3
    assert "finished" in ready("status", "1").output


def test_local_tick_builds_when_the_earliest_zone_reaches_the_slot(
    ready: Cli, captured: Captured
) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    _add(ready, "here@example.com", None)
    _add(ready, "behind@example.com", "Etc/GMT+5")  # UTC-5, no DST
    now = utcnow()
    slot = now - timedelta(minutes=30)
    schedule = f"{slot.minute} {slot.hour} * * *"
    settings = ready.settings(schedule=schedule, local_time=True, misfire_grace_seconds=3600)
    engine = make_engine(settings.effective_database_url)
    factory = session_factory(engine)
    try:
        built = local_tick(settings, factory, now)
        assert built == 1
        assert captured.envelopes == []  # the clock opens the edition; a worker sends
        assert "sent 1, failed 0" in ready("worker", "--once").output
        assert [r for _, rcpts, _ in captured.envelopes for r in rcpts] == ["here@example.com"]
        # A second tick (or a second clock) neither rebuilds nor resends.
        assert local_tick(settings, factory, now + timedelta(minutes=1)) is None
        ready("worker", "--once")
        assert len(captured.envelopes) == 1
        with factory() as s:
            [(email, wait)] = s.execute(
                select(Subscriber.email, Delivery.not_before)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(Delivery.state == "pending")
            ).all()
            assert email == "behind@example.com"
            assert wait is not None and wait - now == timedelta(hours=4, minutes=30) - timedelta(
                seconds=now.second, microseconds=now.microsecond
            )
            assert assemble.latest_id(s) == 1
            assert lifecycle.counts(s, 1)
    finally:
        engine.dispose()
