"""The worker loop (``digest worker``): send the pending deliveries of running editions.

Polls the ledger every ``interval`` seconds, or takes chunk tasks from the
queue with DIGEST_QUEUE=procrastinate (which handles SIGTERM itself). SIGTERM
ends the polling loop between messages; the hourly cap holds polling back
until it allows more.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from sqlalchemy.orm import Session, sessionmaker

from digest.core.settings import Settings
from digest.delivery import hourly, service
from digest.delivery.manager import SendSummary
from digest.processes import queue
from digest.transports.factory import open_transport


def run_worker(
    settings: Settings,
    factory: sessionmaker[Session],
    on_summary: Callable[[SendSummary], None],
    *,
    interval: float = 5.0,
    once: bool = False,
) -> None:
    """Send until SIGTERM (or, with ``once``, until nothing is pending)."""
    if queue.enabled(settings):
        queue.run_worker(settings, factory, once)
        return
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    while not stop.is_set():
        with factory() as s:
            capped = hourly.next_allowed(s, settings.hourly_limit) is not None
            todo = [] if capped else service.editions_with_pending(s)
        for edition_id in todo:
            transport = open_transport(settings)
            on_summary(
                service.send_edition(settings, factory, str(edition_id), transport, stop=stop)
            )
        if once:
            break
        stop.wait(interval)
