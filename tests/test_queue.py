"""Scale-out over procrastinate: `digest send` defers chunk tasks, `digest worker`s drain them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest
from conftest import Captured, Cli
from sending_setup import FAST, edition_with
from sqlalchemy import text

from digest.core.settings import Settings
from digest.delivery.manager import DeliveryOptions
from digest.processes import queue, takeover
from digest.transports.base import MemoryTransport


def test_queue_chunk_sends_at_most_its_rows(cli: Cli) -> None:
    with edition_with(cli, 30) as ed:
        ed.start()
        transport = MemoryTransport()
        options = DeliveryOptions(connections=3, claim_batch=4, max_rows=7)
        assert ed.send(transport, options).sent == 7
        assert ed.send(transport, options).sent == 7
        assert ed.send(transport, FAST).sent == 16  # no bound: the rest
        assert Counter(r for _, r, _ in transport.sent) == Counter(ed.emails)
        assert ed.status() == "finished"


def test_queue_needs_postgresql(cli: Cli, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("about SQLite")
    with edition_with(cli, 2) as ed:
        cli.env["DIGEST_QUEUE"] = "procrastinate"
        result = cli("send", "1", ok=False)
        assert result.exit_code == 1
        assert result.output == (
            "Error: setting DIGEST_QUEUE: procrastinate needs a PostgreSQL DIGEST_DATABASE_URL\n"
        )
        assert ed.status() == "draft"


def test_queue_three_workers_drain_one_edition_exactly_once(
    cli: Cli, captured: Captured, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("procrastinate runs on PostgreSQL only")
    with edition_with(cli, 300) as ed:
        cli.env |= {
            "DIGEST_QUEUE": "procrastinate",
            "DIGEST_QUEUE_CHUNK": "40",
            "DIGEST_SMTP_CONNECTIONS": "2",
        }
        out = cli("send", "1").output
        assert "300 deliveries pending; deferred 8 chunk tasks" in out
        assert captured.envelopes == []  # nothing sent in-process
        # A duplicated delivery of every task: it must cost nothing but empty claims.
        settings = ed.settings.model_copy(update={"queue_chunk": 40})
        app = queue.build_app(settings, ed.factory)
        assert queue.defer_chunks(app, settings, ed.factory, ed.id) == 8
        env = {**os.environ, **cli.env}
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "digest", "worker", "--once"],
                cwd=cli.cwd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for _ in range(3)
        ]
        for w in workers:
            _, err = w.communicate(timeout=180)
            assert w.returncode == 0, err.decode()
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        assert got == Counter(ed.emails)  # exactly one message per subscriber
        assert set(ed.states().values()) == {"sent"}
        assert ed.status() == "finished"
        with ed.factory() as s:
            left = s.scalar(
                text("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")
            )
        assert left == 0
        assert "up to date" in cli("init").output  # the queue schema is applied once


def test_queue_takeover_timings_follow_the_lease_as_documented() -> None:
    # README, "Queue work is never stranded": heartbeat lease/6 (0.5 to 10 s), dead after
    # four heartbeats (at least 5 s), a round every lease/3 (1 to 10 s).
    def timing(lease: float) -> tuple[float, float, float]:
        t = takeover.Timing.from_settings(Settings(lease_seconds=lease))
        return t.heartbeat, t.stalled_after, t.every

    assert timing(120) == (10.0, 40.0, 10.0)
    assert timing(30) == (5.0, 20.0, 10.0)
    assert timing(3) == (0.5, 5.0, 1.0)
    assert timing(600) == (10.0, 40.0, 10.0)
