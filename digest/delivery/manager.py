"""The delivery manager: drives one edition through the ledger to a transport.

It owns claiming, parallel sending threads (one connection each),
throttling, backoff and the edition's final status (through
``digest.delivery.lifecycle``); the transport only sends bytes and the
ledger writer (``digest.delivery.ledger``) makes each outcome durable.

Semantics are at most once, and exact in practice: before each message its
connection's thread hands the writer the previous message's outcome and the
next row, and waits until both are committed (the row ``sending``, its claim
re-checked) before ``MAIL FROM``. A crash therefore leaves at most one
``unknown`` row per connection. Only failures that provably happened before
the server accepted a message are retried; rows never tried go back to
``pending``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import is_transient, transaction, utcnow
from digest.core.errors import DeliveryError, DigestError, SubscriberError
from digest.core.models import Edition
from digest.core.settings import Settings
from digest.core.status import DeliveryState, EditionStatus
from digest.delivery import claims, hourly, lifecycle
from digest.delivery.ledger import LedgerWriter, Outcome, retrying
from digest.delivery.messages import EditionMessages
from digest.delivery.throttle import HourlyCapReached, RateLimit, backoff
from digest.mail.message import Recipient
from digest.transports.base import NotSent, Rejected, Transport, Unknown, Unsendable

T = TypeVar("T")
OnSent = Callable[[int], None]
"""Called with 1 after each message handed to the transport (a progress bar's ``advance``)."""


@dataclass(frozen=True)
class DeliveryOptions:
    connections: int = 1
    claim_batch: int = 200
    lease: float = 120.0
    max_attempts: int = 5
    backoff: float = 1.0
    bounce_limit: int = 3
    rate_limit: float = 0.0
    hourly_limit: int = 0
    status_every: float = 0.5  # seconds between re-reads of the edition status (pause/cancel)
    hourly_max_wait: float = 60.0  # wait this long at most for the hourly cap, else stop for now
    max_rows: int = 0  # claim at most this many rows in this run (a queue chunk); 0 = all
    write_give_up: float = 600.0  # keep retrying a failing ledger write this long (seconds)
    pipeline: bool = True  # announce the next envelope behind each final dot (RFC 2920)

    @classmethod
    def from_settings(cls, s: Settings) -> DeliveryOptions:
        return cls(
            connections=s.smtp_connections,
            claim_batch=s.claim_batch,
            lease=s.lease_seconds,
            max_attempts=s.max_attempts,
            backoff=s.backoff_seconds,
            bounce_limit=s.bounce_limit,
            rate_limit=s.rate_limit,
            hourly_limit=s.hourly_limit,
        )


@dataclass
class SendSummary:
    edition_id: int
    total: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    already_done: int = 0
    elapsed: float = 0.0
    status: str = ""
    recovered_unknown: int = 0
    bounced: int = 0
    held_back: str = ""  # why rows were left pending on purpose (e.g. the hourly cap)
    # Rows of the edition whose outcome is unknown after this run, from any run: only
    # an operator resends them (--retry unknown), so a report must not hide them.
    unknown_held: int = 0
    # Active subscribers the edition gave no row at its start (see digest.delivery.variants).
    skipped_nothing_new: int = 0
    skipped_not_due: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.failed + self.unknown


class DeliveryManager:
    def __init__(
        self,
        factory: sessionmaker[Session],
        transport: Transport,
        messages: EditionMessages,
        options: DeliveryOptions | None = None,
    ) -> None:
        self.factory = factory
        self.transport = transport
        self.messages = messages
        self.options = options or DeliveryOptions()
        self.limit = RateLimit(self.options.rate_limit, self.options.hourly_limit)
        self._lock = threading.Lock()
        self._halt = threading.Event()  # set on stop, pause/cancel or a fatal transport error
        self._fatal: BaseException | None = None
        self._status_at = 0.0
        self._budget = self.options.max_rows
        self._stop: threading.Event | None = None
        # Announcing the next envelope only pays when nothing waits between messages.
        o = self.options
        self._pipeline = o.pipeline and not o.rate_limit and not o.hourly_limit

    def _retrying(self, what: str, work: Callable[[], T]) -> T:
        return retrying(what, work, give_up_after=self.options.write_give_up, stop=self._stop)

    def run(
        self, on_sent: OnSent | None = None, stop: threading.Event | None = None
    ) -> SendSummary:
        """Send every pending row of the edition with N threads; returns what happened.

        Setting ``stop`` (e.g. on SIGTERM) ends the run between two messages.
        """
        edition_id = self.messages.edition_id
        summary = SendSummary(edition_id)
        began = time.monotonic()
        self._stop = stop

        def reap() -> int:
            with transaction(self.factory) as s:
                return claims.reap(s, edition_id)[1]

        summary.recovered_unknown = self._retrying("reaping lapsed claims", reap)
        with self.factory() as s:
            counts = lifecycle.counts(s, edition_id)
            if self.options.hourly_limit:
                now = utcnow()
                recent = hourly.recent_sends(s, self.options.hourly_limit, now)
                self.limit.seed((now - t).total_seconds() for t in recent)
        self._summary = summary
        summary.total = sum(counts.values())
        summary.already_done = summary.total - counts.get(DeliveryState.PENDING, 0)
        self._writer = LedgerWriter(
            self.factory,
            lease=self.options.lease,
            bounce_limit=self.options.bounce_limit,
            give_up_after=self.options.write_give_up,
            stop=stop,
        )
        threads = [
            threading.Thread(target=self._thread, args=(on_sent,), name=f"send-{i}", daemon=True)
            for i in range(max(1, self.options.connections))
        ]
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except BaseException:
            self._halt.set()  # Ctrl-C in the main thread: threads stop between messages
            for t in threads:
                t.join()
            raise
        finally:
            self._writer.close()
            self.transport.close()
            w = self._writer.written
            summary.sent, summary.failed, summary.unknown = w.sent, w.failed, w.unknown
            summary.bounced, summary.failures = w.bounced, w.failures

            def settle() -> str:
                with transaction(self.factory) as s:
                    return lifecycle.settle(s, edition_id).value

            summary.status = self._retrying("settling the edition's status", settle)
            summary.elapsed = time.monotonic() - began
        if self._fatal is not None:
            raise self._fatal
        return summary

    # -- one sending thread ---------------------------------------------------

    def _halted(self) -> bool:
        if self._halt.is_set():
            return True
        if self._stop is not None and self._stop.is_set():
            self._halt.set()
            return True
        now = time.monotonic()
        if now - self._status_at >= self.options.status_every:
            self._status_at = now
            try:
                with self.factory() as s:
                    status = s.scalar(
                        select(Edition.status).where(Edition.id == self.messages.edition_id)
                    )
            except Exception as exc:
                if not is_transient(exc):
                    raise
                return False  # the ledger writer retries its own writes; ask again later
            if status != EditionStatus.RUNNING:
                self._halt.set()
                return True
        return False

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._fatal is None:
                self._fatal = exc
        self._halt.set()

    def _thread(self, on_sent: OnSent | None) -> None:
        o = self.options
        edition_id = self.messages.edition_id
        try:
            while not self._halted():
                size = self._take_budget(o.claim_batch)
                if not size:
                    return

                def take(size: int = size) -> claims.Claim:
                    with transaction(self.factory) as s:
                        return claims.claim(s, edition_id, size, o.lease)

                claim = self._retrying("claiming deliveries", take)
                if not claim.rows:
                    return
                self._writer.hold(claim.token)
                try:
                    self._send_claim(claim, on_sent)
                finally:
                    self._writer.drop(claim.token)
        except BaseException as exc:
            self._fail(exc)

    def _take_budget(self, want: int) -> int:
        """How many rows the next claim may take (``max_rows`` bounds a whole run)."""
        if not self.options.max_rows:
            return want
        with self._lock:
            n = min(want, self._budget)
            self._budget -= n
        return n

    def _send_claim(self, claim: claims.Claim, on_sent: OnSent | None) -> None:
        rows = claim.rows
        sender_of = self.messages.envelope_sender  # VERP: each message its own return path
        previous: Outcome | None = None  # the last message's outcome, not yet written
        i = 0
        try:
            while i < len(rows) and not self._halted():
                r = rows[i]
                try:
                    message = self.messages.build(
                        Recipient(r.subscriber_id, r.email, r.name, r.token_version, r.topics),
                        r.variant_id,
                    )
                except SubscriberError as exc:
                    self._writer.step(claim.token, previous)
                    previous = Outcome(r, DeliveryState.FAILED, str(exc))
                    i += 1
                    continue
                if not self._may_send():
                    break
                # Durable before MAIL FROM: the last outcome, and this row `sending`.
                held = self._writer.step(claim.token, previous, mark=r.delivery_id)
                previous = None
                i += 1
                if not held:
                    continue  # lease lost: another sender or the reaper owns it now
                # The next envelope may ride behind this message's final dot (RFC 2920):
                # an envelope without its data delivers nothing, so the next row need
                # not be `sending` yet; it is before any byte of its message is written.
                then = None
                if self._pipeline and i < len(rows) and not self._halt.is_set():
                    then = (sender_of(rows[i].subscriber_id), rows[i].envelope)
                previous, fatal = self._deliver(r, sender_of(r.subscriber_id), message, then)
                if on_sent:
                    on_sent(1)
                if fatal is not None:
                    self._fail(fatal)
                    break
        finally:
            # Whatever happens (a fatal error included), write what we know and
            # give back rows that never reached the transport.
            self._writer.step(claim.token, previous, release=[r.delivery_id for r in rows[i:]])

    def _may_send(self) -> bool:
        """Wait for the rate limits; False means stop (SIGTERM, or the hourly cap is reached)."""
        try:
            return self.limit.wait(self._stop, self.options.hourly_max_wait)
        except HourlyCapReached:
            with self._lock:
                self._summary.held_back = (
                    f"hourly limit of {self.options.hourly_limit} messages reached"
                    " (DIGEST_HOURLY_LIMIT); the rest stays pending for a later run"
                )
            self._halt.set()
            return False

    def _deliver(
        self, r: claims.Row, sender: str, message: bytes, then: tuple[str, str] | None = None
    ) -> tuple[Outcome, BaseException | None]:
        """Send one message (retrying what provably did not go out); its outcome, and
        an error that should stop the whole send (the server refuses everyone)."""
        pending = DeliveryState.PENDING
        last: Exception | None = None
        for attempt in range(1, self.options.max_attempts + 1):
            try:
                self.transport.send(sender, r.envelope, message, then=then)
            except Rejected as exc:
                if exc.stage == "connect" and exc.permanent:
                    # The server refuses service to everyone: not this recipient's fault.
                    fatal = DeliveryError(_server(self.transport), str(exc))
                    return Outcome(r, pending, str(exc)), fatal
                if exc.permanent:
                    return Outcome(r, DeliveryState.FAILED, str(exc), exc.code), None
                last = exc  # 4xx before the server accepted: safe to try again
            except Unsendable as exc:
                return Outcome(r, DeliveryState.FAILED, str(exc)), None
            except NotSent as exc:
                last = exc
            except Unknown as exc:
                return Outcome(r, DeliveryState.UNKNOWN, str(exc)), None
            except DigestError as exc:
                # The transport cannot work at all (untrusted certificate, login
                # refused, bad CA file): raised before this message went anywhere.
                return Outcome(r, pending), exc
            except BaseException as exc:
                # Interrupted mid-send, or a transport fault we cannot place: the
                # message may have gone out, so only an operator resends it.
                return Outcome(r, DeliveryState.UNKNOWN, f"interrupted while sending: {exc!r}"), (
                    exc if not isinstance(exc, Exception) else None
                )
            else:
                return Outcome(r, DeliveryState.SENT), None
            then = None  # a retried message announces nothing
            if attempt < self.options.max_attempts:
                pause = backoff(attempt, self.options.backoff)
                if self._halt.wait(pause) or (self._stop is not None and self._stop.is_set()):
                    return Outcome(r, pending, str(last)), None
        if isinstance(last, Rejected) and last.stage != "connect":
            return Outcome(r, DeliveryState.FAILED, str(last), last.code), None
        return Outcome(r, pending, str(last)), DeliveryError(_server(self.transport), str(last))


def _server(transport: Transport) -> str:
    if display := getattr(transport, "display", None):
        return str(display)
    target = getattr(transport, "target", None)
    return getattr(target, "display", type(transport).__name__)
