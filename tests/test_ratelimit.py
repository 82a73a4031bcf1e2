"""The global rate limit and the per-hour cap: on an injected clock, and through a real send."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from conftest import Captured, Cli
from sending_setup import FAST, edition_with
from sqlalchemy import update

from digest.core.db import transaction, utcnow
from digest.core.models import Delivery
from digest.delivery.manager import DeliveryOptions
from digest.delivery.throttle import HOUR, HourlyCapReached, RateLimit
from digest.transports.base import MemoryTransport


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ratelimit_spaces_messages_globally_across_threads() -> None:
    clock = FakeClock()
    limit = RateLimit(per_second=10, clock=clock)
    delays: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(10):
            d = limit.delay()
            with lock:
                delays.append(round(d, 6))

    threads = [threading.Thread(target=take) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 30 messages at 10/s from three threads: one slot each, 0.1 s apart, none shared.
    assert sorted(delays) == [round(i / 10, 6) for i in range(30)]


def test_ratelimit_hourly_cap_counts_a_rolling_hour() -> None:
    clock = FakeClock()
    limit = RateLimit(per_hour=3, clock=clock)
    assert [limit.delay() for _ in range(3)] == [0, 0, 0]
    with pytest.raises(HourlyCapReached) as info:
        limit.delay(max_wait=60)
    assert info.value.seconds == HOUR
    clock.now += 1800
    with pytest.raises(HourlyCapReached):
        limit.delay(max_wait=60)  # a refusal reserved nothing
    assert limit.delay() == 1800  # without a bound it waits for the oldest to age out
    clock.now += 1800
    assert limit.delay(max_wait=60) == 0  # 2 of the first 3 aged out at once


def test_ratelimit_seeded_sends_count_against_the_cap() -> None:
    clock = FakeClock()
    limit = RateLimit(per_hour=2, clock=clock)
    limit.seed([10.0, 4000.0])  # one send 10 s ago; the other is older than an hour
    assert limit.delay(max_wait=0) == 0
    with pytest.raises(HourlyCapReached) as info:
        limit.delay(max_wait=0)
    assert info.value.seconds == HOUR - 10


def test_ratelimit_zero_means_no_limit() -> None:
    limit = RateLimit(clock=FakeClock())
    assert all(limit.wait() for _ in range(1000))


def test_ratelimit_rate_limited_send_delivers_everything_once(cli: Cli) -> None:
    reserved = Counter[str]()

    class Counting(RateLimit):
        def delay(self, max_wait: float = float("inf")) -> float:
            reserved[threading.current_thread().name] += 1
            return super().delay(max_wait)

    with edition_with(cli, 20) as ed:
        ed.start()
        transport = MemoryTransport()
        manager = ed.manager(transport, DeliveryOptions(connections=3, rate_limit=400))
        manager.limit = Counting(400)
        summary = manager.run()
    assert summary.sent == 20
    assert sorted(r for _, r, _ in transport.sent) == sorted(ed.emails)
    assert sum(reserved.values()) == 20  # every message took a slot of the one shared limiter


def test_ratelimit_hourly_cap_sends_that_many_and_leaves_the_rest_pending(
    cli: Cli, captured: Captured
) -> None:
    with edition_with(cli, 12) as ed:
        cli.env["DIGEST_HOURLY_LIMIT"] = "5"
        out = cli("send", "1").output
        assert "sent 5, failed 0, unknown 0" in out
        assert "hourly limit of 5 messages reached" in out
        assert "edition is running" in out
        assert len(captured.envelopes) == 5
        assert Counter(ed.states().values()) == Counter({"sent": 5, "pending": 7})
        assert ed.status() == "running"

        status = cli("status", "1").output
        assert "edition 1: running; deliveries: pending 7, sent 5" in status
        assert "waiting: hourly limit reached (5 messages in the last hour" in status
        assert '"waiting": "hourly limit reached' in cli("status", "1", "--json").output

        # Another run (or a worker polling) within the hour sends nothing more.
        cli("send", "1")
        cli("worker", "--once")
        assert len(captured.envelopes) == 5

        # An hour later the next five go.
        with transaction(ed.factory) as s:
            s.execute(update(Delivery).values(sent_at=utcnow() - timedelta(hours=1, seconds=1)))
        assert "sent 5," in cli("send", "1").output
        assert Counter(ed.states().values()) == Counter({"sent": 10, "pending": 2})
        assert len({r for _, rs, _ in captured.envelopes for r in rs}) == 10


def test_ratelimit_hourly_cap_off_sends_everything(cli: Cli) -> None:
    with edition_with(cli, 8) as ed:
        ed.start()
        summary = ed.send(MemoryTransport(), FAST)
        assert summary.sent == 8 and summary.held_back == ""
        assert ed.status() == "finished"
