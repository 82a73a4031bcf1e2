"""Scale-out over procrastinate (a PostgreSQL task queue): "send a chunk of edition E" tasks.

With ``DIGEST_QUEUE=procrastinate`` on PostgreSQL, ``digest send`` opens the
edition's ledger and defers one task per ``DIGEST_QUEUE_CHUNK`` pending rows;
any number of ``digest worker`` processes, on any number of machines, take
them. A task carries no recipients: it says "send up to N pending rows of
edition E", and the ledger's claims decide who gets what. A duplicated task
finds nothing left to claim (no duplicate email); a lost one leaves rows
pending, which the takeover in every worker re-defers (no lost email).

Work is never stranded (``digest.processes.takeover``): each worker beats a
heartbeat into ``procrastinate_workers`` and, every few seconds, retries the
tasks of workers whose heartbeat stopped (procrastinate's stalled jobs),
brings back the ledger rows whose lease expired, finishes editions left with
no open row and re-defers chunks for pending rows that have no task. A chunk
that fails for a passing reason (SMTP outage, lost database) is retried by
procrastinate with a capped backoff; a worker whose database connection dies
restarts its loop with a capped backoff. Neither ends ``digest worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction
from digest.core.errors import ConfigError
from digest.core.models import Edition
from digest.core.settings import Settings
from digest.core.status import DeliveryState, EditionStatus
from digest.delivery import manager, service
from digest.processes import takeover
from digest.transports.factory import open_transport

if TYPE_CHECKING:  # procrastinate takes a third of a second to import: only when used
    import procrastinate
    from procrastinate.types import JSONDict

log = logging.getLogger("digest.queue")

QUEUE = "digest"
CHUNK_TASK = "digest.send_chunk"
WORKER_NAME = "digest"  # procrastinate logs as procrastinate.worker.<name>
POOL_TIMEOUT = 10.0  # seconds to wait for a database connection before calling it lost
RESTART_CAP = 60.0  # seconds: the longest wait before a worker restarts after a lost database


def enabled(settings: Settings) -> bool:
    """Whether sends go through the queue; it needs PostgreSQL."""
    if settings.queue != "procrastinate":
        return False
    if make_url(settings.effective_database_url).get_backend_name() != "postgresql":
        raise ConfigError("DIGEST_QUEUE", "procrastinate needs a PostgreSQL DIGEST_DATABASE_URL")
    return True


def conninfo(database_url: str) -> str:
    """A libpq connection string from a SQLAlchemy URL (``postgresql+psycopg://`` too)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


def ensure_schema(engine: Engine) -> bool:
    """Create procrastinate's tables once (``digest init`` on PostgreSQL); True if created."""
    if engine.dialect.name != "postgresql":
        return False
    from procrastinate.schema import SchemaManager

    with engine.begin() as conn:
        if conn.scalar(text("SELECT to_regclass('procrastinate_jobs')")) is not None:
            return False
        conn.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))
    return True


def build_app(
    settings: Settings, factory: sessionmaker[Session], stop: threading.Event | None = None
) -> procrastinate.App:
    """The procrastinate app with digest's chunk task bound to these settings and database.

    ``stop`` (set on SIGTERM in a worker) ends a running chunk between two messages.
    """
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=conninfo(settings.effective_database_url), timeout=POOL_TIMEOUT
        )
    )

    @app.task(name=CHUNK_TASK, queue=QUEUE, retry=takeover.chunk_retry(settings))
    def send_chunk(edition_id: int, rows: int) -> dict[str, Any]:
        """Send up to ``rows`` pending rows of a running edition (nothing if none are left)."""
        return run_chunk(settings, factory, edition_id, rows, stop)

    return app


def run_chunk(
    settings: Settings,
    factory: sessionmaker[Session],
    edition_id: int,
    rows: int,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """The chunk function: the same in a worker process as in-process.

    An exception (SMTP outage, lost database) leaves the untried rows pending
    and makes procrastinate retry the task later (``takeover.chunk_retry``).
    """
    with factory() as s:
        status = s.scalar(select(Edition.status).where(Edition.id == edition_id))
    if status != EditionStatus.RUNNING:
        log.info("edition %s is %s: chunk skipped", edition_id, status)
        return {"edition": edition_id, "sent": 0, "status": str(status)}
    options = dataclasses.replace(manager.DeliveryOptions.from_settings(settings), max_rows=rows)
    # The check ran (or was overridden with --force) when the send was started.
    summary = service.send_edition(
        settings,
        factory,
        str(edition_id),
        open_transport(settings),
        stop=stop,
        force=True,
        options=options,
    )
    log.info(
        "edition %s: chunk sent %s, failed %s, unknown %s; edition %s",
        edition_id,
        summary.sent,
        summary.failed,
        summary.unknown,
        summary.status,
    )
    return {"edition": edition_id, "sent": summary.sent, "status": summary.status}


def _chunks(settings: Settings, edition_id: int, pending: int) -> list[JSONDict]:
    chunk: JSONDict = {"edition_id": edition_id, "rows": settings.queue_chunk}
    return [chunk] * math.ceil(pending / settings.queue_chunk)


def defer_chunks(
    app: procrastinate.App, settings: Settings, factory: sessionmaker[Session], edition_id: int
) -> int:
    """Defer one chunk task per ``queue_chunk`` pending rows; returns how many."""
    with transaction(factory) as s:
        pending = service.pending_rows(s, edition_id)
    chunks = _chunks(settings, edition_id, pending)
    if chunks:
        with app.open():
            app.configure_task(CHUNK_TASK, queue=QUEUE).batch_defer(*chunks)
    return len(chunks)


def defer_send(
    settings: Settings,
    factory: sessionmaker[Session],
    ref: str,
    force: bool = False,
    retry: DeliveryState | None = None,
) -> tuple[int, int, int]:
    """``digest send`` with a queue: open the ledger, defer chunk tasks.

    Returns (edition id, pending rows, tasks deferred).
    """
    edition_id, _, pending = service.open_send(settings, factory, ref, force, retry)
    tasks = defer_chunks(build_app(settings, factory), settings, factory, edition_id)
    return edition_id, pending, tasks


# -- the worker ----------------------------------------------------------------


async def takeover_round(
    app: procrastinate.App,
    settings: Settings,
    factory: sessionmaker[Session],
    own_worker: int | None = None,
) -> int:
    """One takeover round (see ``digest.processes.takeover``); returns the chunks deferred.

    ``own_worker`` is this process's procrastinate worker id: its tasks are never retried.
    """
    timing = takeover.Timing.from_settings(settings)
    await takeover.retry_stalled(app, QUEUE, CHUNK_TASK, timing.stalled_after, own_worker)
    todo = await asyncio.to_thread(
        takeover.sweep_ledger, factory, CHUNK_TASK, settings.hourly_limit
    )
    deferred = 0
    for edition_id, pending in todo:
        chunks = _chunks(settings, edition_id, pending)
        await app.configure_task(CHUNK_TASK, queue=QUEUE).batch_defer_async(*chunks)
        log.info(
            "edition %s: %s pending rows had no task: deferred %s", edition_id, pending, len(chunks)
        )
        deferred += len(chunks)
    return deferred


async def _take_over_forever(
    app: procrastinate.App,
    settings: Settings,
    factory: sessionmaker[Session],
    worker: procrastinate.worker.Worker,
    every: float,
) -> None:
    """Takeover rounds until cancelled; a failed round (the database away) ends the
    worker's life, so ``run_worker`` restarts it with a backoff."""
    while True:
        await asyncio.sleep(every)
        await takeover_round(app, settings, factory, worker.worker_id)


async def _until(stop: threading.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.2)


def _quiet_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's handler, minus the traceback of a procrastinate task that failed for a
    passing reason while the worker stopped (``run_worker`` already said why)."""
    exc = context.get("exception")
    if exc is not None and takeover.transient(exc):
        log.info("%s: %s", context.get("message", "task failed"), takeover.one_line(exc))
        return
    loop.default_exception_handler(context)


class WorkerStopped(Exception):
    """procrastinate's worker returned without being asked to (a side task failed)."""


async def _serve(
    settings: Settings, factory: sessionmaker[Session], once: bool, stop: threading.Event
) -> None:
    """One life of the worker: returns when stopped (or drained, with ``once``)."""
    from procrastinate.worker import Worker

    timing = takeover.Timing.from_settings(settings)
    asyncio.get_running_loop().set_exception_handler(_quiet_handler)
    # Ends this life's running chunk between two messages: on a stop, and when the
    # worker must restart (its chunk would otherwise outlive it, retrying its writes).
    chunk_stop = threading.Event()
    app = build_app(settings, factory, chunk_stop)
    async with app.open_async():
        await takeover_round(app, settings, factory)  # at start, so `--once` takes over too
        # procrastinate's Worker itself (what App.run_worker_async runs), for its id.
        procrastinate_worker = Worker(
            app,
            queues=[QUEUE],
            name=WORKER_NAME,
            concurrency=1,
            wait=not once,
            delete_jobs="successful",
            install_signal_handlers=False,  # ours set ``stop``, which also ends a chunk
            update_heartbeat_interval=timing.heartbeat,
            stalled_worker_timeout=timing.stalled_after,
        )
        worker = asyncio.create_task(procrastinate_worker.run())
        side = [
            asyncio.create_task(_until(stop)),
            asyncio.create_task(
                _take_over_forever(app, settings, factory, procrastinate_worker, timing.every)
            ),
        ]
        try:
            done, _ = await asyncio.wait([worker, *side], return_when=asyncio.FIRST_COMPLETED)
            if worker not in done:
                chunk_stop.set()
                worker.cancel()  # procrastinate's graceful stop: the running chunk ends first
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await worker  # its unregistering fails too when the database is away
                for task in done:
                    task.result()  # a takeover round that failed: the database is away
                return
            worker.result()
            if not once and not stop.is_set():
                raise WorkerStopped("the queue worker stopped (a lost database connection?)")
        finally:
            for task in side:
                task.cancel()
            await asyncio.gather(*side, return_exceptions=True)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event SIGTERM and SIGINT set (in the main thread), for the block."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    before = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def run_worker(
    settings: Settings,
    factory: sessionmaker[Session],
    once: bool,
    stop: threading.Event | None = None,
) -> None:
    """Take chunk tasks until SIGTERM/SIGINT (or ``stop``), or, with ``once``, until the
    queue is empty. A stop ends the running chunk between two messages.

    A lost database connection (or any passing failure of the worker itself)
    restarts it after a backoff doubling up to a minute, with one log line;
    with ``once`` it is a ConfigError naming the database instead.
    """
    if not logging.getLogger().handlers:  # `digest worker` prints chunks and takeovers
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if stop is None:
        with _stop_on_signals() as stop:
            _run_worker(settings, factory, once, stop)
    else:
        _run_worker(settings, factory, once, stop)


def _run_worker(
    settings: Settings, factory: sessionmaker[Session], once: bool, stop: threading.Event
) -> None:
    takeover.quiet_tracebacks(
        "procrastinate.worker", f"procrastinate.worker.{WORKER_NAME}", "procrastinate.utils"
    )
    # The pool logs each failed reconnection; our one line per restart says it instead.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    delay = 0.0
    while not stop.is_set():
        began = time.monotonic()
        try:
            asyncio.run(_serve(settings, factory, once, stop))
            return
        except Exception as exc:
            if takeover.missing_schema(exc):
                raise ConfigError(
                    "DIGEST_QUEUE", "the queue's tables are missing: run `digest init`"
                ) from None
            if not (isinstance(exc, WorkerStopped) or takeover.transient(exc)):
                raise
            if once:  # a batch run reports the failure; a long-running worker waits it out
                raise ConfigError(
                    "DIGEST_DATABASE_URL",
                    f"the queue's database cannot be reached ({takeover.one_line(exc)})",
                ) from None
            if stop.is_set():
                return
            lived = time.monotonic() - began
            delay = 1.0 if lived > RESTART_CAP else min(RESTART_CAP, max(1.0, delay * 2))
            log.warning(
                "queue worker stopped (%s); restarting in %.0f s", takeover.one_line(exc), delay
            )
            stop.wait(delay)
