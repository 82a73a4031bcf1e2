"""The delivery manager: drives one edition through the ledger to a transport.

It owns batching, parallel sending threads, throttling, backoff and the
edition's final status (through ``digest.delivery.lifecycle``); the transport only sends
bytes. Semantics are at most once: a window of rows is committed as
``sending`` before the first of them goes to the transport, only failures
that provably happened before the server accepted a message are retried,
and rows of the window that were never tried go back to ``pending``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction, utcnow
from digest.core.errors import DeliveryError, DigestError, SubscriberError
from digest.core.models import Edition
from digest.core.settings import Settings
from digest.core.status import DeliveryState, EditionStatus
from digest.delivery import bounces, claims, hourly, lifecycle
from digest.delivery.throttle import HourlyCapReached, RateLimit, backoff
from digest.mail.message import MessageFactory, Recipient
from digest.transports.base import NotSent, Rejected, Transport, Unknown

OnSent = Callable[[int], None]
"""Called with 1 after each message handed to the transport (a progress bar's ``advance``)."""


@dataclass(frozen=True)
class DeliveryOptions:
    connections: int = 1
    claim_batch: int = 200
    window: int = 20
    lease: float = 120.0
    max_attempts: int = 5
    backoff: float = 1.0
    bounce_limit: int = 3
    rate_limit: float = 0.0
    hourly_limit: int = 0
    status_every: float = 0.5  # seconds between re-reads of the edition status (pause/cancel)
    hourly_max_wait: float = 60.0  # wait this long at most for the hourly cap, else stop for now
    max_rows: int = 0  # claim at most this many rows in this run (a queue chunk); 0 = all

    @classmethod
    def from_settings(cls, s: Settings) -> DeliveryOptions:
        return cls(
            connections=s.smtp_connections,
            claim_batch=s.claim_batch,
            window=s.sending_window,
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
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.failed + self.unknown


@dataclass
class Window:
    """Outcomes of one window of rows, written in one transaction."""

    sent: list[int] = field(default_factory=list)
    failed: list[tuple[claims.Row, str, int | None]] = field(default_factory=list)
    unknown: list[tuple[claims.Row, str]] = field(default_factory=list)
    release: list[tuple[int, str | None]] = field(default_factory=list)


class DeliveryManager:
    def __init__(
        self,
        factory: sessionmaker[Session],
        transport: Transport,
        messages: MessageFactory,
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

    def run(
        self, on_sent: OnSent | None = None, stop: threading.Event | None = None
    ) -> SendSummary:
        """Send every pending row of the edition with N threads; returns what happened.

        Setting ``stop`` (e.g. on SIGTERM) ends the run between two messages.
        """
        edition_id = self.messages.edition_id
        summary = SendSummary(edition_id)
        began = time.monotonic()
        with transaction(self.factory) as s:
            _, summary.recovered_unknown = claims.reap(s, edition_id)
        with self.factory() as s:
            counts = lifecycle.counts(s, edition_id)
            if self.options.hourly_limit:
                now = utcnow()
                recent = hourly.recent_sends(s, self.options.hourly_limit, now)
                self.limit.seed((now - t).total_seconds() for t in recent)
        self._summary = summary
        summary.total = sum(counts.values())
        summary.already_done = summary.total - counts.get(DeliveryState.PENDING, 0)
        self._stop = stop
        threads = [
            threading.Thread(
                target=self._thread, args=(summary, on_sent), name=f"send-{i}", daemon=True
            )
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
            self.transport.close()
            with transaction(self.factory) as s:
                summary.status = lifecycle.settle(s, edition_id).value
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
            with self.factory() as s:
                status = s.scalar(
                    select(Edition.status).where(Edition.id == self.messages.edition_id)
                )
            if status != EditionStatus.RUNNING:
                self._halt.set()
                return True
        return False

    def _thread(self, summary: SendSummary, on_sent: OnSent | None) -> None:
        o = self.options
        edition_id = self.messages.edition_id
        try:
            while not self._halted():
                size = self._take_budget(o.claim_batch)
                if not size:
                    return
                with transaction(self.factory) as s:
                    claim = claims.claim(s, edition_id, size, o.lease)
                if not claim.rows:
                    return
                self._send_claim(claim, summary, on_sent)
        except BaseException as exc:
            with self._lock:
                if self._fatal is None:
                    self._fatal = exc
            self._halt.set()

    def _take_budget(self, want: int) -> int:
        """How many rows the next claim may take (``max_rows`` bounds a whole run)."""
        if not self.options.max_rows:
            return want
        with self._lock:
            n = min(want, self._budget)
            self._budget -= n
        return n

    def _send_claim(
        self, claim: claims.Claim, summary: SendSummary, on_sent: OnSent | None
    ) -> None:
        o = self.options
        rows = claim.rows
        renewed = time.monotonic()
        done = Window()
        held: set[int] = set()
        sender = self.messages.sender.addr_spec
        i = 0
        try:
            while i < len(rows):
                window = rows[i : i + o.window]
                stopping = self._halted()
                with transaction(self.factory) as s:
                    self._record(s, claim.token, done, summary)
                    done = Window()
                    if time.monotonic() - renewed > o.lease / 3:
                        claims.renew(s, claim.token, o.lease)
                        renewed = time.monotonic()
                    if stopping:
                        claims.release(s, claim.token, [r.delivery_id for r in rows[i:]])
                        i = len(rows)
                        return
                    held = claims.mark_sending(
                        s, claim.token, [r.delivery_id for r in window], o.lease
                    )
                for r in window:
                    if r.delivery_id not in held:
                        continue  # lease lost: another worker or the reaper owns it now
                    held.discard(r.delivery_id)
                    if not self._may_send() or self._halt.is_set():
                        done.release.append((r.delivery_id, None))
                        continue
                    self._deliver(r, sender, done, summary)
                    if on_sent:
                        on_sent(1)
                i += len(window)
        finally:
            # Whatever happens (a fatal error included), write what we know and
            # give back rows that never reached the transport.
            for d in held:
                done.release.append((d, None))
            untried = [r.delivery_id for r in rows[i:]]
            with transaction(self.factory) as s:
                self._record(s, claim.token, done, summary)
                if untried:
                    claims.release(s, claim.token, untried)

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

    def _deliver(self, r: claims.Row, sender: str, done: Window, summary: SendSummary) -> None:
        to = Recipient(r.subscriber_id, r.email, r.name)
        try:
            message = self.messages.build(to)
        except SubscriberError as exc:
            done.failed.append((r, str(exc), None))
            return
        last: Exception | None = None
        for attempt in range(1, self.options.max_attempts + 1):
            try:
                self.transport.send(sender, r.email, message)
            except Rejected as exc:
                if exc.stage == "connect" and exc.permanent:
                    # The server refuses service to everyone: not this recipient's fault.
                    done.release.append((r.delivery_id, str(exc)))
                    raise DeliveryError(_server(self.transport), str(exc)) from None
                if exc.permanent:
                    done.failed.append((r, str(exc), exc.code))
                    return
                last = exc  # 4xx before the server accepted: safe to try again
            except NotSent as exc:
                last = exc
            except Unknown as exc:
                done.unknown.append((r, str(exc)))
                return
            except DigestError:
                # The transport cannot work at all (untrusted certificate, login
                # refused, bad CA file): raised before this message went anywhere.
                done.release.append((r.delivery_id, None))
                raise
            except BaseException:
                # Interrupted mid-send: we cannot know whether it went out.
                done.unknown.append((r, "interrupted while sending"))
                raise
            else:
                done.sent.append(r.delivery_id)
                return
            if attempt < self.options.max_attempts:
                pause = backoff(attempt, self.options.backoff)
                if self._halt.wait(pause) or (self._stop is not None and self._stop.is_set()):
                    done.release.append((r.delivery_id, str(last)))
                    return
        if isinstance(last, Rejected) and last.stage != "connect":
            done.failed.append((r, str(last), last.code))
            return
        done.release.append((r.delivery_id, str(last)))
        raise DeliveryError(_server(self.transport), str(last))

    def _record(self, s: Session, token: str, w: Window, summary: SendSummary) -> None:
        claims.sent(s, token, w.sent)
        for r, error, code in w.failed:
            claims.failed(s, token, r.delivery_id, error, code)
        for r, error in w.unknown:
            claims.unknown(s, token, [r.delivery_id], error)
        for delivery_id, why in w.release:
            claims.release(s, token, [delivery_id], why)
        hard = [r.subscriber_id for r, _, code in w.failed if code is not None and code >= 500]
        bounced = bounces.mark_bounced(s, hard, self.options.bounce_limit)
        with self._lock:
            summary.sent += len(w.sent)
            summary.failed += len(w.failed)
            summary.unknown += len(w.unknown)
            summary.bounced += len(bounced)
            summary.failures += [(r.email, error) for r, error, _ in w.failed]
            summary.failures += [(r.email, error) for r, error in w.unknown]


def _server(transport: Transport) -> str:
    if display := getattr(transport, "display", None):
        return str(display)
    target = getattr(transport, "target", None)
    return getattr(target, "display", type(transport).__name__)
