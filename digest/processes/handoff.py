"""Hand an edition to the workers: what the clock and the web app do instead of sending.

``open_for_workers`` renders and checks the edition and starts its ledger
(``service.open_send``); with the queue enabled it also defers the chunk
tasks. Then it returns: a polling ``digest worker`` finds the pending rows on
its next poll, a queue worker takes the tasks. Nothing is sent in the caller's
process, so a web request or a clock job never holds an SMTP connection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from digest.core.settings import Settings
from digest.core.status import DeliveryState
from digest.delivery import service
from digest.processes import queue

log = logging.getLogger("digest.handoff")


@dataclass(frozen=True)
class Opened:
    edition_id: int
    pending: int
    tasks: int  # chunk tasks deferred (0 without the queue)


def open_for_workers(
    settings: Settings,
    factory: sessionmaker[Session],
    ref: str,
    force: bool = False,
    retry: DeliveryState | None = None,
    local_slot: datetime | None = None,
    slot: datetime | None = None,
) -> Opened:
    """Open edition ``ref`` for the workers (and defer its chunks with the queue); send nothing.

    Problems the caller can fix (wrong status, failed pre-send check, nobody
    to send to) are raised here, before anything starts.
    """
    with_queue = queue.enabled(settings)
    edition_id, _, pending = service.open_send(
        settings, factory, ref, force, retry, local_slot, slot
    )
    tasks = 0
    if with_queue:
        tasks = queue.defer_chunks(
            queue.build_app(settings, factory), settings, factory, edition_id
        )
    log.info(
        "edition %s opened for the workers: %s pending%s",
        edition_id,
        pending,
        f", {tasks} chunk tasks deferred" if with_queue else "",
    )
    return Opened(edition_id, pending, tasks)
