"""Outcomes survive what goes wrong around them: lapsed leases, failed commits, lost links."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import pytest
from conftest import Captured, Cli, running_smtp
from sending_setup import FAST, edition_with
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from digest.core.db import make_engine
from digest.transports.smtp import SmtpTransport, parse_smtp_url


def received(captured: Captured) -> Counter[str]:
    return Counter(r for _, rs, _ in captured.envelopes for r in rs)


def smtp(cli: Cli) -> SmtpTransport:
    return SmtpTransport(parse_smtp_url(cli.env["DIGEST_SMTP_URL"]))


def test_rate_limited_send_outlives_a_short_lease_with_a_worker_beside_it(
    cli: Cli, captured: Captured
) -> None:
    """A send slower than its lease keeps its rows: nobody gets two messages, none unknown."""
    with edition_with(cli, 30) as ed:
        env = {
            **os.environ,
            **cli.env,
            "DIGEST_RATE_LIMIT": "5",
            "DIGEST_LEASE_SECONDS": "2",
            "DIGEST_SMTP_CONNECTIONS": "2",
            "DIGEST_CLAIM_BATCH": "6",  # rows stay pending for the worker to claim too
        }
        sender = subprocess.Popen(
            [sys.executable, "-m", "digest", "send", "1"],
            cwd=cli.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "digest", "worker", "--interval", "0.5"],
            cwd=cli.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            out, _ = sender.communicate(timeout=120)
            assert sender.returncode == 0, out
        finally:
            worker.terminate()
            worker_out, _ = worker.communicate(timeout=60)
        assert set(ed.states().values()) == {"sent"}, (out, worker_out)
        got = received(captured)
        assert set(got) == set(ed.emails)
        assert max(got.values()) == 1


class FailingCommits:
    """Makes chosen COMMITs of an engine fail the way a lost connection does."""

    def __init__(self, engine: Any, fail: set[int]) -> None:
        self.fail = fail
        self.count = 0
        self.failed = 0
        self.lock = threading.Lock()
        event.listen(engine, "commit", self)

    def __call__(self, conn: Any) -> None:
        with self.lock:
            self.count += 1
            n = self.count
        if n in self.fail:
            self.failed += 1
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))


def test_failed_commits_are_retried_and_lose_no_outcome(cli: Cli, captured: Captured) -> None:
    with edition_with(cli, 120) as ed:
        ed.start()
        engine = ed.factory.kw["bind"]
        # Several commits fail once, some twice in a row, while outcomes are being written.
        faults = FailingCommits(engine, {8, 9, 15, 30, 31, 32, 47, 60, 90})
        summary = ed.send(smtp(cli), FAST)
        assert faults.failed == 9
        assert summary.sent == 120 and summary.unknown == 0
        assert set(ed.states().values()) == {"sent"}
        got = received(captured)
        assert set(got) == set(ed.emails) and max(got.values()) == 1


def test_send_goes_on_when_its_postgresql_connections_are_terminated(
    cli: Cli, captured: Captured, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    with edition_with(cli, 400) as ed:
        ed.start()
        killer = make_engine(database_url)
        done = threading.Event()
        terminated: list[int] = []

        def terminate_now_and_then() -> None:
            while not done.is_set() and len(terminated) < 3:
                if len(captured.envelopes) > 60 * (len(terminated) + 1):
                    with killer.begin() as conn:
                        n = conn.execute(
                            text(
                                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                            )
                        ).scalar_one()
                    terminated.append(int(n))
                time.sleep(0.005)

        t = threading.Thread(target=terminate_now_and_then)
        t.start()
        try:
            summary = ed.send(smtp(cli), FAST)
        finally:
            done.set()
            t.join()
            killer.dispose()
        assert len(terminated) == 3 and sum(terminated) > 0
        states = Counter(ed.states().values())
        # A terminated connection can only cost the row that was being written.
        assert states["sent"] == 400  # outcomes were rewritten on new connections, none lost
        assert summary.sent == states["sent"]
        got = received(captured)
        assert set(got) == set(ed.emails) and max(got.values()) == 1


def test_an_address_the_server_cannot_take_fails_alone_and_is_never_unknown(cli: Cli) -> None:
    """Refused before a byte left (a non-ASCII address, no SMTPUTF8 offered): `failed`, and
    the send goes on for everyone else."""
    captured = Captured()
    with running_smtp(captured, enable_SMTPUTF8=False) as port, edition_with(cli, 20) as ed:
        with ed.factory.begin() as s:
            s.execute(
                text("UPDATE subscribers SET email = :e WHERE email = :old"),
                {"e": "zoë@example.com", "old": ed.emails[7]},
            )
        ed.start()
        summary = ed.send(SmtpTransport(parse_smtp_url(f"smtp://127.0.0.1:{port}")), FAST)
        states = ed.states()
        assert states.pop("zoë@example.com") == "failed"
        assert set(states.values()) == {"sent"} and summary.unknown == 0
        error = ed.outcomes()["zoë@example.com"][1] or ""
        assert "zoë@example.com" in error and "address" in error
        assert set(received(captured)) == set(states)
