"""A worker's heartbeat: a small thread that keeps the worker's row in the database fresh.

It beats while the worker polls and while it sends (the sending threads never
wait for it), survives a database that is away (one log line, next beat as
usual) and deletes the row when the worker exits cleanly.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction
from digest.delivery import claims, workers

log = logging.getLogger("digest.worker")


class Heartbeat:
    """``with Heartbeat(factory, "poll"):`` the block runs as a worker others can see."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        kind: str,
        every: float = workers.BEAT_SECONDS,
    ) -> None:
        self.factory = factory
        self.kind = kind
        self.every = every
        self.worker_id = claims.owner()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="digest-heartbeat", daemon=True)
        self._failing = False

    def beat(self) -> bool:
        """One beat; False (and one log line when it starts failing) if the database is away."""
        try:
            with transaction(self.factory) as s:
                workers.beat(s, self.worker_id, self.kind)
        except SQLAlchemyError as exc:
            if not self._failing:
                log.warning("heartbeat: cannot reach the database: %s", one_line(exc))
            self._failing = True
            return False
        if self._failing:
            log.info("heartbeat: the database is back")
        self._failing = False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.beat()

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        try:
            with transaction(self.factory) as s:
                workers.leave(s, self.worker_id)
        except SQLAlchemyError as error:  # the row goes stale on its own
            log.warning("heartbeat: could not remove this worker's row: %s", one_line(error))


def one_line(exc: BaseException) -> str:
    """An exception as one log line.

    SQLAlchemy's messages carry the SQL and a help URL below the first line
    (dropped); digest's own list their details on further lines (kept, joined).
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if isinstance(exc, SQLAlchemyError):
        return lines[0]
    return " ".join(lines)
