"""The ledger writer: every message's outcome is durable before its connection moves on.

Each sending thread hands the writer one ``Step`` before each message: the
outcome of its previous message and the row it is about to send. The writer
commits a step (and any others that arrived meanwhile: a group commit) in one
transaction — the previous outcome written, the next row ``sending`` after
re-checking that its claim still holds it — and only then lets the thread
send. So a crash at any moment leaves at most one row per connection whose
outcome is not written, and that row is the one whose final dot may have
reached the server.

The writer also renews the leases of every claim its threads hold, by the
database's clock, a third of a lease apart, so a slow server or a rate limit
never lets a held row lapse. A write that fails for a transient reason (a
lost connection, SQLite busy past its timeout) is retried with a capped
backoff; the outcomes stay in memory until a commit has taken them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import first_line, is_transient
from digest.core.errors import DeliveryError
from digest.core.status import DeliveryState
from digest.delivery import bounces, claims

log = logging.getLogger("digest.delivery")
STOP_GRACE = 10.0  # seconds a stopping sender keeps trying to write what it knows
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    """What became of one message: sent, failed, unknown, or back to pending (not sent)."""

    row: claims.Row
    state: DeliveryState
    error: str | None = None
    code: int | None = None


@dataclass
class Written:
    """What the commits so far changed (the summary counts only this)."""

    sent: int = 0
    failed: int = 0
    unknown: int = 0
    bounced: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Step:
    token: str
    outcome: Outcome | None
    mark: int | None
    release: list[int]
    done: threading.Event = field(default_factory=threading.Event)
    held: bool = False
    written: bool = False


def retrying(
    what: str,
    work: Callable[[], T],
    *,
    give_up_after: float,
    first_pause: float = 0.05,
    max_pause: float = 5.0,
    stop: threading.Event | None = None,
    stop_grace: float = STOP_GRACE,
) -> T:
    """Run ``work`` again after transient database errors, with a capped backoff.

    One log line per failure; after ``give_up_after`` seconds of failures a
    DeliveryError (one line, no traceback) says what could not be written.
    Once ``stop`` is set (the process is asked to end) it gives up after
    ``stop_grace`` more seconds instead: rows it could not write stay
    ``sending`` and the next sender finds them ``unknown``, never guessed.
    """
    pause = first_pause
    began = time.monotonic()
    stopped_at: float | None = None
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_transient(exc):
                raise
            now = time.monotonic()
            if stop is not None and stop.is_set() and stopped_at is None:
                stopped_at = now
            waited = now - began
            if waited >= give_up_after or (
                stopped_at is not None and now - stopped_at >= stop_grace
            ):
                raise DeliveryError(
                    "database", f"{what}: still failing after {waited:.0f}s: {first_line(exc)}"
                ) from None
            log.warning("%s failed (%s); retrying in %.2fs", what, first_line(exc), pause)
            if stop is not None:
                stop.wait(pause)
            else:
                time.sleep(pause)
            pause = min(max_pause, pause * 2)


class LedgerWriter:
    """Writes every sending thread's steps, a few per commit (a leader/follower group commit).

    A thread with a step to write becomes the writer when nobody is writing:
    it takes every step queued so far (its own included) and commits them in
    one transaction; steps that arrive meanwhile wait and go in the next
    commit, written by one of their threads. No thread hands its step to
    another and waits to be woken unless a commit is already under way. A
    small thread renews held leases when no step has done so for a third of
    a lease (a rate limit or a slow server can keep every sender waiting).
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        lease: float,
        bounce_limit: int,
        give_up_after: float,
        stop: threading.Event | None = None,
    ) -> None:
        self.factory = factory
        self.stop = stop
        self.lease = lease
        self.bounce_limit = bounce_limit
        self.give_up_after = give_up_after
        self.written = Written()
        self._steps: list[Step] = []
        self._tokens: set[str] = set()
        self._renewed = time.monotonic()
        self._cond = threading.Condition()
        self._writing = False
        self._closed = False
        self._error: BaseException | None = None
        self._conn: Connection | None = None
        self._renewer = threading.Thread(target=self._renew_loop, name="lease-renewal", daemon=True)
        self._renewer.start()

    # -- what sending threads call ------------------------------------------

    def hold(self, token: str) -> None:
        """Keep renewing this claim's lease until ``drop``."""
        with self._cond:
            self._tokens.add(token)

    def drop(self, token: str) -> None:
        with self._cond:
            self._tokens.discard(token)

    def step(
        self,
        token: str,
        outcome: Outcome | None,
        mark: int | None = None,
        release: list[int] | None = None,
    ) -> bool:
        """Write ``outcome`` and mark row ``mark`` sending; True if the claim still holds it.

        Blocks until committed; raises DeliveryError if the database stayed unwritable.
        """
        if outcome is None and mark is None and not release:
            return False
        step = Step(token, outcome, mark, release or [])
        self._commit(step)
        if not step.written:
            with self._cond:
                assert self._error is not None
                raise self._error
        return step.held

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._renewer.join()
        with self._cond:
            while self._writing:
                self._cond.wait()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- writing ------------------------------------------------------------

    def _commit(self, step: Step | None) -> None:
        """Queue ``step`` and return once it is written (by this thread or another).

        ``step=None`` (the renewal thread) writes only what is queued and the leases.
        """
        with self._cond:
            if self._error is not None:
                raise self._error
            if step is not None:
                self._steps.append(step)
            while self._writing and not (step is not None and step.done.is_set()):
                self._cond.wait()
            if step is not None and step.done.is_set():
                return
            self._writing = True
            batch, self._steps = self._steps, []
            tokens = list(self._tokens) if step is None or self._renew_due() else []
        error: BaseException | None = None
        try:
            if batch or tokens:
                retrying(
                    f"writing {len(batch)} delivery outcome(s)",
                    lambda: self._write(batch, tokens),
                    give_up_after=self.give_up_after,
                    stop=self.stop,
                )
        except BaseException as exc:
            error = exc
        with self._cond:
            self._writing = False
            if error is not None:
                self._error = error
                batch += self._steps
                self._steps = []
            elif tokens:
                self._renewed = time.monotonic()
            for s in batch:
                s.done.set()
            self._cond.notify_all()
        if error is not None and step is None:
            raise error

    def _renew_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._renew_due():
                    self._cond.wait(self._until_renewal())
                if self._closed:
                    return
            try:
                self._commit(None)
            except BaseException:  # recorded in self._error: the senders stop with it
                return

    def _renew_due(self) -> bool:
        return bool(self._tokens) and time.monotonic() - self._renewed >= self.lease / 3

    def _until_renewal(self) -> float:
        return max(0.01, self.lease / 3 - (time.monotonic() - self._renewed))

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            engine = self.factory.kw["bind"]
            self._conn = engine.connect()
        return self._conn

    def _write(self, batch: list[Step], tokens: list[str]) -> None:
        written = Written()
        held: dict[int, bool] = {}
        conn = self._connection()
        try:
            with conn.begin():
                if tokens:
                    with Session(bind=conn) as s:
                        claims.renew(s, tokens, self.lease)
                hard: list[int] = []
                for step in batch:
                    o = step.outcome
                    if o is not None:
                        self._write_outcome(conn, step.token, o, written)
                        if o.state == DeliveryState.FAILED and (o.code or 0) >= 500:
                            hard.append(o.row.subscriber_id)
                    for d in step.release:
                        claims.write_outcome(conn, step.token, d, DeliveryState.PENDING)
                if hard:
                    with Session(bind=conn) as s:
                        bounced = bounces.mark_bounced(s, hard, self.bounce_limit)
                        s.flush()
                    written.bounced = len(bounced)
                for step in batch:
                    if step.mark is not None:
                        held[id(step)] = claims.mark_one(conn, step.token, step.mark, self.lease)
        except BaseException:
            conn.close()  # a fresh connection for the retry
            self._conn = None
            raise
        # Committed: only now do the outcomes count, and may the threads go on.
        for step in batch:
            step.held = held.get(id(step), False)
            step.written = True
        w = self.written
        w.sent += written.sent
        w.failed += written.failed
        w.unknown += written.unknown
        w.bounced += written.bounced
        w.failures += written.failures

    @staticmethod
    def _write_outcome(c: Connection, token: str, o: Outcome, written: Written) -> None:
        if not claims.write_outcome(c, token, o.row.delivery_id, o.state, o.error, o.code):
            return  # the claim lost this row (reaped); whoever holds it now decides
        if o.state == DeliveryState.SENT:
            written.sent += 1
        elif o.state == DeliveryState.FAILED:
            written.failed += 1
            written.failures.append((o.row.email, o.error or ""))
        elif o.state == DeliveryState.UNKNOWN:
            written.unknown += 1
            written.failures.append((o.row.email, o.error or ""))
