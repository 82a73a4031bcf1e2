"""Queue work is never stranded: real `digest worker` processes on PostgreSQL with the queue,
a real SMTP server, and a worker killed, an SMTP server away or database connections cut."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from conftest import Captured, Cli, free_port
from sending_setup import Edition, edition_with
from sqlalchemy import Connection, create_engine, make_url, text

WAIT = 120.0  # seconds: a bound so a broken takeover fails the test instead of hanging it


@pytest.fixture(autouse=True)
def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("procrastinate runs on PostgreSQL only")


def queue_env(cli: Cli, **extra: str) -> None:
    cli.env |= {
        "DIGEST_QUEUE": "procrastinate",
        "DIGEST_LEASE_SECONDS": "3",
        "DIGEST_BACKOFF_SECONDS": "0.05",
        **extra,
    }


@contextmanager
def workers(cli: Cli, n: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """N `digest worker` processes (no --once: they wait for work); stopped at the end."""
    env = {**os.environ, **cli.env, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = []
    for i in range(n):
        log = (cli.cwd / f"worker{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "digest", "worker"],
                cwd=cli.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        log.close()
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM a worker; its exit status."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def log_of(cli: Cli, i: int) -> str:
    return Path(cli.cwd / f"worker{i}.log").read_text()


def wait_for(what: str, ready: Callable[[], bool], ed: Edition) -> None:
    deadline = time.monotonic() + WAIT
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}: rows {Counter(ed.states().values())}")
        time.sleep(0.1)


def jobs(ed: Edition, status: str) -> int:
    with ed.factory() as s:
        return int(
            s.scalar(
                text("SELECT count(*) FROM procrastinate_jobs WHERE status = :s"), {"s": status}
            )
            or 0
        )


def test_queue_dead_workers_chunk_is_taken_over_and_the_edition_finishes(
    cli: Cli, captured: Captured
) -> None:
    with edition_with(cli, 600) as ed:
        queue_env(
            cli,
            DIGEST_QUEUE_CHUNK="100",
            DIGEST_SMTP_CONNECTIONS="2",
            DIGEST_CLAIM_BATCH="25",
            DIGEST_RATE_LIMIT="40",  # per worker: the kill lands mid-chunk
        )
        assert "deferred 6 chunk tasks" in cli("send", "1").output
        with workers(cli, 3) as procs:
            wait_for(
                "three workers inside a chunk",
                lambda: jobs(ed, "doing") == 3 and len(captured.envelopes) >= 60,
                ed,
            )
            procs[0].kill()
            procs[0].wait()
            # No operator action from here: the other two workers finish the edition.
            wait_for("the edition to finish", lambda: ed.status() == "finished", ed)
            # The dead worker's task leaves `doing` only by being taken over.
            wait_for("the queue to drain", lambda: jobs(ed, "todo") + jobs(ed, "doing") == 0, ed)
            assert [stop(p) for p in procs[1:]] == [0, 0]
        states = ed.states()
        unknown = {email for email, state in states.items() if state == "unknown"}
        assert set(states.values()) <= {"sent", "unknown"}
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        assert set(got) | unknown == set(ed.emails)  # nobody missing
        assert max(got.values()) <= 2
        assert sum(1 for n in got.values() if n == 2) <= len(unknown)
        assert "retried" in log_of(cli, 1) + log_of(cli, 2)  # the stalled task was taken over


def test_queue_worker_started_while_smtp_is_down_delivers_once_it_is_up(cli: Cli) -> None:
    port = free_port()
    with edition_with(cli, 40) as ed:
        queue_env(cli, DIGEST_QUEUE_CHUNK="15", DIGEST_SMTP_URL=f"smtp://127.0.0.1:{port}")
        cli("send", "1")
        with workers(cli, 1) as procs:
            wait_for(
                "failed chunks to be retried", lambda: log_of(cli, 0).count("retried in") >= 4, ed
            )
            # Nothing given up on, nothing unknown (a chunk may be trying to connect right now).
            assert set(ed.states().values()) <= {"pending", "claimed", "sending"}
            assert procs[0].poll() is None
            late = Captured()
            server = Controller(late, hostname="127.0.0.1", port=port)
            server.start()
            try:
                wait_for("the edition to finish", lambda: ed.status() == "finished", ed)
                assert stop(procs[0]) == 0
            finally:
                server.stop()
        got = Counter(r for _, rs, _ in late.envelopes for r in rs)
        assert got == Counter(ed.emails)
        log = log_of(cli, 0)
        assert "Connection refused" in log
        assert "Traceback" not in log


def test_queue_worker_survives_its_database_connections_being_terminated_mid_send(
    cli: Cli, captured: Captured
) -> None:
    with edition_with(cli, 200) as ed:
        queue_env(cli, DIGEST_QUEUE_CHUNK="50", DIGEST_RATE_LIMIT="40")
        cli("send", "1")
        with workers(cli, 1) as procs, admin_of(ed) as (admin, database):
            wait_for("the chunk to be under way", lambda: len(captured.envelopes) >= 20, ed)
            # Cut again and again for two seconds, so some cuts land inside a transaction.
            cut = 0
            for _ in range(40):
                cut += terminate(admin, database)
                time.sleep(0.05)
            assert cut
            ed.factory.kw["bind"].dispose()  # our own connections were cut too
            wait_for("the edition to finish", lambda: ed.status() == "finished", ed)
            assert procs[0].poll() is None
            assert stop(procs[0]) == 0
        states = ed.states()
        unknown = {email for email, state in states.items() if state == "unknown"}
        assert set(states.values()) <= {"sent", "unknown"}
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        assert set(got) | unknown == set(ed.emails)  # nobody missing
        assert max(got.values()) == 1
        assert "Traceback" not in log_of(cli, 0)


def test_queue_worker_waits_out_a_database_that_refuses_connections(
    cli: Cli, captured: Captured
) -> None:
    with edition_with(cli, 50) as ed:
        queue_env(cli, DIGEST_QUEUE_CHUNK="20")
        with workers(cli, 1) as procs, admin_of(ed) as (admin, database):
            wait_for("the worker to register", lambda: registered(ed) == 1, ed)
            admin.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            try:
                terminate(admin, database)
                deadline = time.monotonic() + WAIT
                while "restarting in" not in log_of(cli, 0):
                    assert time.monotonic() < deadline, log_of(cli, 0)
                    time.sleep(0.1)
            finally:
                admin.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
                ed.factory.kw["bind"].dispose()  # our own connections were cut too
            assert procs[0].poll() is None
            cli("send", "1")
            wait_for("the edition to finish", lambda: ed.status() == "finished", ed)
            assert stop(procs[0]) == 0
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        assert got == Counter(ed.emails)
        log = log_of(cli, 0)
        assert "Traceback" not in log
        assert "queue worker stopped (" in log


@contextmanager
def admin_of(ed: Edition) -> Iterator[tuple[Connection, str]]:
    """A connection to the server's ``postgres`` database, and the test database's name."""
    url = make_url(ed.settings.effective_database_url)
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as admin:
            yield admin, str(url.database)
    finally:
        server.dispose()


def terminate(admin: Connection, database: str) -> int:
    """Terminate every connection to ``database`` (from one to another database); how many."""
    sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :d"
    return int(admin.scalar(text(sql), {"d": database}) or 0)


def registered(ed: Edition) -> int:
    with ed.factory() as s:
        return int(s.scalar(text("SELECT count(*) FROM procrastinate_workers")) or 0)


def test_queue_worker_sigterm_ends_its_chunk_between_messages(cli: Cli, captured: Captured) -> None:
    with edition_with(cli, 200) as ed:
        queue_env(cli, DIGEST_QUEUE_CHUNK="200", DIGEST_RATE_LIMIT="20")
        cli("send", "1")
        with workers(cli, 1) as procs:
            wait_for("the chunk to be under way", lambda: len(captured.envelopes) >= 10, ed)
            assert stop(procs[0]) == 0
        states = Counter(ed.states().values())
        assert set(states) == {"sent", "pending"}  # nothing left claimed or in flight
        assert states["pending"] > 100  # it stopped early, not at the end of the chunk
        assert ed.status() == "running"
        cli.env["DIGEST_RATE_LIMIT"] = "0"
        with workers(cli, 1) as procs:  # a worker started later sends the rest
            wait_for("the edition to finish", lambda: ed.status() == "finished", ed)
            assert stop(procs[0]) == 0
        got = Counter(r for _, rs, _ in captured.envelopes for r in rs)
        assert got == Counter(ed.emails)


def test_queue_worker_without_the_queue_tables_says_to_run_init(cli: Cli) -> None:
    with edition_with(cli, 1) as ed:
        queue_env(cli)
        with ed.factory.begin() as s:
            s.execute(text("DROP TABLE procrastinate_jobs CASCADE"))
        # A process of its own, as an operator runs it (the browser tests' session-wide
        # event loop would refuse the queue worker's asyncio.run() in this one).
        env = {**os.environ, **cli.env, "PYTHONPATH": os.pathsep.join(sys.path)}
        result = subprocess.run(
            [sys.executable, "-m", "digest", "worker", "--once"],
            cwd=cli.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert result.returncode == 1
        assert result.stderr.splitlines()[-1:] == [
            "Error: setting DIGEST_QUEUE: the queue's tables are missing: run `digest init`"
        ]
        assert "Traceback" not in result.stderr


def test_queue_worker_once_that_loses_its_database_says_so_in_one_line(
    cli: Cli, captured: Captured
) -> None:
    with edition_with(cli, 200) as ed:
        queue_env(cli, DIGEST_QUEUE_CHUNK="50", DIGEST_RATE_LIMIT="40")
        cli("send", "1")
        env = {**os.environ, **cli.env, "PYTHONPATH": os.pathsep.join(sys.path)}
        once = subprocess.Popen(
            [sys.executable, "-m", "digest", "worker", "--once"],
            cwd=cli.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            with admin_of(ed) as (admin, database):
                wait_for("the chunk to be under way", lambda: len(captured.envelopes) >= 10, ed)
                admin.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
                try:
                    terminate(admin, database)
                    _, err = once.communicate(timeout=WAIT)
                finally:
                    admin.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
                    ed.factory.kw["bind"].dispose()  # our own connections were cut too
        finally:
            if once.poll() is None:
                once.kill()
                once.wait()
        assert once.returncode == 1
        errors = [line for line in err.decode().splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1
        assert errors[0].startswith(
            "Error: setting DIGEST_DATABASE_URL: the queue's database cannot be reached ("
        )
        assert "Traceback" not in err.decode()
