"""`digest worker` stays up: an SMTP outage, a refused login, a lost database connection.

Each test runs a real `digest worker` process against a real SMTP server
(aiosmtpd on 127.0.0.1) and a real database, breaks something under it, and
checks that the worker never exits, logs one line per failed try (no
traceback) and delivers everything once the trouble is over.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import PG_ENV, Captured, Cli
from sending_setup import edition_with
from sqlalchemy import create_engine, text
from worker_process import digest_process, received, wait_for, workers_alive

from digest.processes.sink import free_port

# Fail fast inside one send (one try, no in-send backoff): the worker's own backoff is tested.
QUICK = {"DIGEST_MAX_ATTEMPTS": "1", "DIGEST_BACKOFF_SECONDS": "0.05"}


@contextmanager
def smtp_on(port: int, handler: Any, **options: Any) -> Iterator[None]:
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    with warnings.catch_warnings():
        # aiosmtpd warns on every connection that AUTH without TLS is unsafe: here on loopback.
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        controller.start()
        try:
            yield
        finally:
            controller.stop()


def test_worker_started_while_smtp_is_down_delivers_everything_once_it_is_up(cli: Cli) -> None:
    port = free_port()  # nothing listens here yet
    with edition_with(cli, 30) as ed:
        ed.start()
        smtp = {"DIGEST_SMTP_URL": f"smtp://127.0.0.1:{port}", **QUICK}
        with digest_process(cli, "worker", "worker", "--interval", "0.2", **smtp) as worker:
            assert wait_for(
                lambda: worker.log.count("trying again in") >= 2 or not worker.running()
            )
            assert worker.running(), worker.log
            assert "cannot connect" in worker.log
            handler = Captured()
            with smtp_on(port, handler):
                assert wait_for(lambda: ed.status() == "finished" or not worker.running())
                assert worker.running(), worker.log
            assert worker.stop() == 0, worker.log
        log = worker.log
        states = ed.states()
    assert received(handler) == {email: 1 for email in ed.emails}
    assert set(states.values()) == {"sent"}
    assert "Traceback" not in log
    failures = [line for line in log.splitlines() if "trying again in" in line]
    assert all("cannot connect" in line for line in failures), failures
    assert workers_alive(cli) == 0  # a clean exit removes the heartbeat


USER, PASSWORD = "mailer", "s3cret"


def test_worker_rides_out_a_refused_login_and_sends_once_it_is_accepted(cli: Cli) -> None:
    accept = {"now": False}

    def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = accept["now"] and isinstance(data, LoginPassword) and data.login == USER.encode()
        return AuthResult(success=ok, handled=False)

    port = free_port()
    handler = Captured()
    auth = {"authenticator": check_login, "auth_required": True, "auth_require_tls": False}
    with edition_with(cli, 5) as ed, smtp_on(port, handler, **auth):
        ed.start()
        smtp = {"DIGEST_SMTP_URL": f"smtp://{USER}:{PASSWORD}@127.0.0.1:{port}", **QUICK}
        with digest_process(cli, "worker", "worker", "--interval", "0.2", **smtp) as worker:
            assert wait_for(lambda: "login refused" in worker.log or not worker.running())
            assert wait_for(
                lambda: worker.log.count("trying again in") >= 2 or not worker.running()
            )
            assert worker.running(), worker.log
            assert handler.envelopes == []
            accept["now"] = True
            assert wait_for(lambda: ed.status() == "finished" or not worker.running())
            assert worker.running(), worker.log
            assert worker.stop() == 0, worker.log
        log = worker.log
    assert received(handler) == {email: 1 for email in ed.emails}
    assert "Traceback" not in log
    [first, *_] = [line for line in log.splitlines() if "login refused" in line]
    assert first.rstrip().endswith("trying again in 1 s"), first


BROKEN_MJML = "<mjml><mj-body><mj-section><mj-column><mj-text>a < b</mj-text>"


def test_worker_rides_out_an_edition_it_cannot_render_without_exiting(cli: Cli) -> None:
    """A running edition with no stored render (started before renders were stored)
    whose templates no longer compile: one line each time, a backoff, and on."""
    from test_check import with_templates

    with_templates(cli, cli.cwd, digest_mjml=BROKEN_MJML)
    with edition_with(cli, 3) as ed:
        ed.start()  # the ledger only, as before migration 0010: no stored render
        with digest_process(cli, "worker", "worker", "--interval", "0.2") as worker:
            assert wait_for(
                lambda: worker.log.count("trying again in") >= 2 or not worker.running()
            )
            assert worker.running(), worker.log
            assert worker.stop() == 0, worker.log
        log = worker.log
        status = ed.status()
    assert "edition 1" in log and "Traceback" not in log
    assert status == "running"  # left for the operator to mend the templates


@pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"needs PostgreSQL ({PG_ENV})")
def test_worker_survives_its_database_connections_being_terminated_mid_send(
    cli: Cli, captured: Captured, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    n = 400
    env = {"DIGEST_RATE_LIMIT": "80", "DIGEST_LEASE_SECONDS": "3", "DIGEST_SMTP_CONNECTIONS": "2"}
    admin = create_engine(cli.env["DIGEST_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    terminate = text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    try:
        with edition_with(cli, n) as ed:
            ed.start()
            with digest_process(cli, "worker", "worker", "--interval", "0.2", **env) as worker:
                killed = 0
                assert wait_for(lambda: len(captured.envelopes) >= n // 5)
                # Terminate every connection again and again for a moment: some are
                # caught in the middle of a transaction.
                for _ in range(40):
                    with admin.connect() as conn:
                        killed += int(conn.scalar(terminate) or 0)
                    time.sleep(0.03)
                assert killed >= 1
                assert wait_for(lambda: ed.status() == "finished" or not worker.running(), 120)
                assert worker.running(), worker.log
                assert worker.stop() == 0, worker.log
            log = worker.log
            states = ed.states()
    finally:
        admin.dispose()
    got = received(captured)
    # Outcomes whose commit died with its connection are written again on a new
    # one: everybody exactly once, nothing left unknown.
    assert set(got) == set(ed.emails) and max(got.values()) == 1
    assert set(states.values()) == {"sent"}
    assert "Traceback" not in log
