"""Queue work that is never stranded: a dead worker's chunk is taken over by the others.

A SIGKILLed ``digest worker`` leaves two things behind: its procrastinate
task stuck in ``doing``, and its ledger rows ``claimed`` or ``sending`` under
a lease nobody renews. Every worker runs a takeover round at start and then
every ``Timing.every`` seconds:

1. procrastinate's stalled-job recovery: the ``doing`` chunk tasks of workers
   whose heartbeat (``procrastinate_workers``) is older than
   ``Timing.stalled_after`` go back to ``todo`` (``retry_job``), so the
   "pending rows but a task exists" test below does not wait on a dead one;
2. the ledger's own recovery, the source of truth: ``claims.reap`` brings the
   rows whose lease expired back (``claimed`` → pending; ``sending`` →
   unknown: the final dot may have gone), ``lifecycle.settle`` finishes an
   edition left with no open row (the dead worker's last rows were all in
   flight), and running editions whose pending rows have no ``todo``/``doing``
   task get chunks deferred again.

The rounds run inside the workers rather than as a procrastinate periodic
task because a periodic task fires at most once a minute, and a takeover
should follow the lease (``DIGEST_LEASE_SECONDS``), which ``Timing`` derives
everything from. Two workers sweeping at once cost at most a duplicate task,
which finds nothing to claim.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction
from digest.core.errors import DigestError, EditionError
from digest.core.models import Edition
from digest.core.settings import Settings
from digest.core.status import EditionStatus
from digest.delivery import claims, hourly, lifecycle, service

if TYPE_CHECKING:
    import procrastinate
    from procrastinate.retry import BaseRetryStrategy

log = logging.getLogger("digest.queue")

RETRY_CAP = 60.0  # seconds: the longest wait before a failed chunk is tried again
SWEEP_LOCK = 0x64696765  # pg advisory lock: one worker sweeps the ledger at a time


@dataclass(frozen=True)
class Timing:
    """How quickly a dead worker's chunk is taken over, all from the lease."""

    heartbeat: float  # seconds between a worker's heartbeats
    stalled_after: float  # a worker silent this long is dead: its running tasks are retried
    every: float  # seconds between two takeover rounds in each worker

    @classmethod
    def from_settings(cls, settings: Settings) -> Timing:
        lease = settings.lease_seconds
        heartbeat = min(10.0, max(0.5, lease / 6))
        # At least 5 s: a live worker whose heartbeats a database hiccup held back
        # should not be taken for dead (it would only cost a duplicate task and a restart).
        return cls(heartbeat, max(4 * heartbeat, 5.0), min(10.0, max(1.0, lease / 3)))


def transient(exc: BaseException) -> bool:
    """A failure that passes: the database or the SMTP server away, a login refused."""
    from procrastinate.exceptions import ConnectorException

    return isinstance(exc, ConnectorException | SQLAlchemyError | OSError | DigestError)


def missing_schema(exc: BaseException) -> bool:
    """Whether procrastinate's tables were never created (``digest init`` not run)."""
    from psycopg.errors import UndefinedTable

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, UndefinedTable):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (psycopg's run to several)."""
    cause = exc.__cause__ if type(exc).__name__ == "ConnectorException" else None
    words = str(cause or exc).strip().splitlines()
    line = words[0] if words else type(exc).__name__
    if "procrastinate_jobs_worker_id_fkey" in line:
        # Its row in procrastinate_workers was pruned: the others took it for dead.
        return "this worker's heartbeat lapsed and the other workers took over its task"
    return line


def chunk_retry(settings: Settings) -> BaseRetryStrategy:
    """procrastinate's retry for chunk tasks: forever, the wait doubling up to a minute.

    A chunk only stops for good when its edition is not running (``EditionError``).
    """
    from procrastinate.retry import BaseRetryStrategy, RetryDecision

    base = max(settings.backoff_seconds, 0.1)

    class ChunkRetry(BaseRetryStrategy):
        def get_retry_decision(self, *, exception: BaseException, job: Any) -> Any:
            edition = job.task_kwargs.get("edition_id")
            if isinstance(exception, EditionError):
                log.warning("edition %s: chunk stopped: %s", edition, one_line(exception))
                return None
            wait = min(RETRY_CAP, base * 2 ** min(job.attempts, 16))
            log.warning(
                "edition %s: chunk stopped: %s; the chunk is retried in %.1f s",
                edition,
                one_line(exception),
                wait,
            )
            return RetryDecision(retry_in={"seconds": wait})

    return ChunkRetry()


class _NoTraceback(logging.Filter):
    """procrastinate logs a failed task with its traceback; for a passing failure the
    one line ``ChunkRetry`` wrote says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and transient(record.exc_info[1]):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_tracebacks(*loggers: str) -> None:
    """No traceback in these loggers' records for passing failures (once per logger)."""
    for name in loggers:
        target = logging.getLogger(name)
        if not any(isinstance(f, _NoTraceback) for f in target.filters):
            target.addFilter(_NoTraceback())


async def retry_stalled(
    app: procrastinate.App,
    queue: str,
    task_name: str,
    stalled_after: float,
    own_worker: int | None = None,
) -> int:
    """Put the running tasks of workers with no recent heartbeat back to ``todo``.

    Never those of ``own_worker`` (this process, alive whatever its heartbeat
    says after a database hiccup). Stalled workers' rows are left for
    procrastinate to prune when a worker starts: pruning a live worker whose
    heartbeat lapsed would only make its next job fetch fail.
    """
    from procrastinate.exceptions import ConnectorException

    manager = app.job_manager
    jobs = await manager.get_stalled_jobs(
        queue=queue, task_name=task_name, seconds_since_heartbeat=stalled_after
    )
    retried = 0
    for job in jobs:
        if own_worker is not None and job.worker_id == own_worker:
            continue
        try:
            await manager.retry_job(job)
        except ConnectorException:
            continue  # another worker retried it first
        retried += 1
        log.info(
            "chunk task %s (edition %s) of a worker silent for %.0f s: retried",
            job.id,
            job.task_kwargs.get("edition_id"),
            stalled_after,
        )
    return retried


def _has_tasks(session: Session, task_name: str, edition_id: int) -> bool:
    return bool(
        session.scalar(
            text(
                "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE task_name = :task"
                " AND status IN ('todo', 'doing') AND (args->>'edition_id')::int = :e)"
            ),
            {"task": task_name, "e": edition_id},
        )
    )


def sweep_ledger(
    factory: sessionmaker[Session], task_name: str, hourly_limit: int = 0
) -> list[tuple[int, int]]:
    """Reap expired leases and settle running editions; returns (edition, pending rows)
    for those whose due pending rows have no chunk task left (none while the hourly
    cap holds sending back: a chunk would only find it reached)."""
    todo: list[tuple[int, int]] = []
    with transaction(factory) as s:
        if not s.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SWEEP_LOCK}):
            return todo  # another worker is sweeping right now
        running = s.scalars(select(Edition.id).where(Edition.status == EditionStatus.RUNNING))
        for edition_id in list(running):
            back, unknown = claims.reap(s, edition_id)
            if back or unknown:
                log.info(
                    "edition %s: claims of stopped senders: %s rows back to pending, %s unknown",
                    edition_id,
                    back,
                    unknown,
                )
            if lifecycle.settle(s, edition_id) == EditionStatus.FINISHED:
                log.info("edition %s: finished", edition_id)
        if hourly.next_allowed(s, hourly_limit) is not None:
            return todo
        for edition_id in service.editions_with_pending(s):
            if not _has_tasks(s, task_name, edition_id):
                todo.append((edition_id, service.pending_rows(s, edition_id)))
    return todo
