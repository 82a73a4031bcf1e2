"""The worker loop (``digest worker``): send the pending deliveries of running editions.

Workers (and `digest send` in an operator's terminal) are the only senders:
the clock and the web app open an edition and return. A worker polls the
ledger every ``interval`` seconds, or takes chunk tasks from the queue with
DIGEST_QUEUE=procrastinate (SIGTERM then ends the running chunk between
messages; ``digest.processes.queue``); either way it keeps a heartbeat in the
database (``digest.processes.heartbeat``).

A worker stays up. An SMTP outage, a refused login, a lost database
connection or an edition it cannot render is one log line and a capped
exponential backoff (per edition, or for the whole loop when the
database is away), reset by the next success. SIGTERM ends the polling loop
between messages; the hourly cap holds polling back until it allows more.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from digest.core.errors import DigestError
from digest.core.settings import Settings
from digest.delivery import hourly, service, workers
from digest.delivery.manager import SendSummary
from digest.processes import queue
from digest.processes.heartbeat import Heartbeat, one_line
from digest.transports.factory import open_transport

log = logging.getLogger("digest.worker")

OnSummary = Callable[[SendSummary], None]
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
# What a worker rides out: its own errors, the database's, the network's.
EXPECTED = (DigestError, SQLAlchemyError, OSError)


@dataclass
class Backoff:
    """1 s, 2 s, 4 s … up to ``cap`` after consecutive failures; ``reset`` on success."""

    first: float = FIRST_BACKOFF
    cap: float = MAX_BACKOFF
    failures: int = 0
    until: float = 0.0  # time.monotonic() before which not to try again

    def fail(self) -> float:
        delay = min(self.cap, self.first * 2**self.failures)
        self.failures += 1
        self.until = time.monotonic() + delay
        return delay

    def reset(self) -> None:
        self.failures = 0
        self.until = 0.0

    def waiting(self) -> bool:
        return time.monotonic() < self.until


@dataclass
class Poller:
    """One polling worker's state: a backoff for the loop and one per edition."""

    settings: Settings
    factory: sessionmaker[Session]
    on_summary: OnSummary
    stop: threading.Event
    loop: Backoff = field(default_factory=Backoff)
    editions: dict[int, Backoff] = field(default_factory=dict)
    failures: int = 0

    def poll(self) -> None:
        """Send what is due in every running edition once; never raises what it can ride out."""
        if self.loop.waiting():
            return
        try:
            with self.factory() as s:
                capped = hourly.next_allowed(s, self.settings.hourly_limit) is not None
                pending = [] if capped else service.editions_with_pending(s)
                todo = sorted({*pending, *workers.stranded_editions(s)})
        except EXPECTED as exc:
            self._failed(self.loop, "cannot read the ledger", exc)
            return
        self.loop.reset()
        for edition_id in todo:
            if self.stop.is_set():
                return
            backoff = self.editions.setdefault(edition_id, Backoff())
            if backoff.waiting():
                continue
            log.info("edition %s: sending", edition_id)
            try:
                summary = service.send_edition(
                    self.settings,
                    self.factory,
                    str(edition_id),
                    open_transport(self.settings),
                    stop=self.stop,
                )
            except EXPECTED as exc:
                self._failed(backoff, f"edition {edition_id}", exc)
                continue
            except Exception as exc:  # a defect: say where, and still stay up
                log.exception("edition %s: unexpected error", edition_id)
                self._failed(backoff, f"edition {edition_id}", exc, logged=True)
                continue
            self.editions.pop(edition_id, None)
            log.info(
                "edition %s: %s after %.1f s: %s sent, %s failed, %s unknown%s",
                edition_id,
                summary.status or "stopped",
                summary.elapsed,
                summary.sent,
                summary.failed,
                summary.unknown,
                f" ({summary.held_back})" if summary.held_back else "",
            )
            self.on_summary(summary)

    def _failed(
        self, backoff: Backoff, what: str, exc: BaseException, logged: bool = False
    ) -> None:
        self.failures += 1
        delay = backoff.fail()
        if not logged:
            text = one_line(exc)
            if not text.startswith(what):  # "edition 3: edition 3 is …" says it twice
                text = f"{what}: {text}"
            log.error("%s; trying again in %.0f s", text, delay)

    def next_wait(self, interval: float) -> float:
        """Seconds to sleep: the poll interval, or less when a backoff ends sooner."""
        ends = [b.until for b in (self.loop, *self.editions.values()) if b.until]
        if not ends:
            return interval
        return max(0.05, min(interval, min(ends) - time.monotonic()))


def run_worker(
    settings: Settings,
    factory: sessionmaker[Session],
    on_summary: OnSummary,
    *,
    interval: float = 5.0,
    once: bool = False,
    stop: threading.Event | None = None,
    poll: bool = False,
) -> int:
    """Send until SIGTERM or ``stop`` (or, with ``once``, until nothing is pending).

    Returns how many attempts failed (logged, backed off, tried again). With
    ``stop`` given (a worker in a thread of another process) no signal handler
    is installed: the owner of ``stop`` sets it. ``poll`` polls the ledger even
    with the queue enabled (chunk tasks then find their rows taken: no harm).
    """
    if not poll and queue.enabled(settings):
        with Heartbeat(factory, "queue"):
            queue.run_worker(settings, factory, once)
        return 0
    if stop is None:
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
    poller = Poller(settings, factory, on_summary, stop)
    with Heartbeat(factory, "poll"):
        log.info("worker started: polling every %s s", interval)
        while not stop.is_set():
            poller.poll()
            if once:
                break
            stop.wait(poller.next_wait(interval))
    log.info("worker stopped")
    return poller.failures


@contextmanager
def worker_alongside(
    settings: Settings,
    factory: sessionmaker[Session],
    on_summary: OnSummary,
    stop: threading.Event,
) -> Iterator[None]:
    """Run a real worker in a thread of this process (``serve``/``schedule --worker``).

    Setting ``stop`` (e.g. on SIGTERM) stops it between two messages; leaving
    the block sets it and waits for the worker to finish.
    """

    def run() -> None:
        try:
            # Polling, even with the queue: it stops between messages when told.
            run_worker(settings, factory, on_summary, stop=stop, poll=True)
        except Exception:  # the process's main job goes on; the log says why
            log.exception("the worker thread stopped")

    thread = threading.Thread(target=run, name="digest-worker")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
