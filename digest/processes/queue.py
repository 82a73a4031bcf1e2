"""Scale-out over procrastinate (a PostgreSQL task queue): "send a chunk of edition E" tasks.

With ``DIGEST_QUEUE=procrastinate`` on PostgreSQL, ``digest send`` opens the
edition's ledger and defers one task per ``DIGEST_QUEUE_CHUNK`` pending rows;
any number of ``digest worker`` processes, on any number of machines, take
them. A task carries no recipients: it says "send up to N pending rows of
edition E", and the ledger's claims decide who gets what. A duplicated task
finds nothing left to claim (no duplicate email); a lost one leaves rows
pending, which a periodic sweep in the workers re-defers (no lost email).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction
from digest.core.errors import ConfigError, DigestError
from digest.core.models import Edition
from digest.core.settings import Settings
from digest.core.status import DeliveryState, EditionStatus
from digest.delivery import manager, service
from digest.transports.factory import open_transport

if TYPE_CHECKING:  # procrastinate takes a third of a second to import: only when used
    import procrastinate
    from procrastinate.types import JSONDict

log = logging.getLogger("digest.queue")

QUEUE = "digest"
CHUNK_TASK = "digest.send_chunk"
SWEEP_TASK = "digest.sweep"


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


def build_app(settings: Settings, factory: sessionmaker[Session]) -> procrastinate.App:
    """The procrastinate app with digest's tasks bound to these settings and database."""
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo(settings.effective_database_url))
    )

    @app.task(name=CHUNK_TASK, queue=QUEUE)
    def send_chunk(edition_id: int, rows: int) -> dict[str, Any]:
        """Send up to ``rows`` pending rows of a running edition (nothing if none are left)."""
        return run_chunk(settings, factory, edition_id, rows)

    @app.periodic(cron="* * * * *", periodic_id="sweep")
    @app.task(name=SWEEP_TASK, queue=QUEUE, queueing_lock=SWEEP_TASK)
    def sweep(timestamp: int) -> int:
        """Re-defer chunks for running editions whose rows are pending but have no task."""
        deferred = 0
        with factory() as s:
            todo = service.editions_with_pending(s)
        for edition_id in todo:
            if not _has_tasks(factory, edition_id):
                deferred += defer_chunks(app, settings, factory, edition_id)
        return deferred

    return app


def run_chunk(
    settings: Settings, factory: sessionmaker[Session], edition_id: int, rows: int
) -> dict[str, Any]:
    """The chunk function: the same in a worker process as in-process."""
    with factory() as s:
        status = s.scalar(select(Edition.status).where(Edition.id == edition_id))
    if status != EditionStatus.RUNNING:
        log.info("edition %s is %s: chunk skipped", edition_id, status)
        return {"edition": edition_id, "sent": 0, "status": str(status)}
    options = dataclasses.replace(manager.DeliveryOptions.from_settings(settings), max_rows=rows)
    try:
        # The check ran (or was overridden with --force) when the send was started.
        summary = service.send_edition(
            settings,
            factory,
            str(edition_id),
            open_transport(settings),
            force=True,
            options=options,
        )
    except DigestError as exc:
        log.error("edition %s: chunk stopped: %s", edition_id, exc)
        raise
    log.info(
        "edition %s: chunk sent %s, failed %s, unknown %s; edition %s",
        edition_id,
        summary.sent,
        summary.failed,
        summary.unknown,
        summary.status,
    )
    return {"edition": edition_id, "sent": summary.sent, "status": summary.status}


def _has_tasks(factory: sessionmaker[Session], edition_id: int) -> bool:
    with factory() as s:
        return bool(
            s.scalar(
                text(
                    "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE task_name = :task"
                    " AND status IN ('todo', 'doing') AND (args->>'edition_id')::int = :e)"
                ),
                {"task": CHUNK_TASK, "e": edition_id},
            )
        )


def defer_chunks(
    app: procrastinate.App, settings: Settings, factory: sessionmaker[Session], edition_id: int
) -> int:
    """Defer one chunk task per ``queue_chunk`` pending rows; returns how many."""
    with transaction(factory) as s:
        pending = service.pending_rows(s, edition_id)
    tasks = math.ceil(pending / settings.queue_chunk)
    if not tasks:
        return 0
    job = app.configure_task(CHUNK_TASK, queue=QUEUE)
    chunk: JSONDict = {"edition_id": edition_id, "rows": settings.queue_chunk}
    with app.open():
        job.batch_defer(*[chunk] * tasks)
    return tasks


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


def run_worker(settings: Settings, factory: sessionmaker[Session], once: bool) -> None:
    """Take chunk tasks until SIGTERM/SIGINT (then finish the current chunk), or, with
    ``once``, until the queue is empty."""
    app = build_app(settings, factory)
    with app.open():
        app.run_worker(queues=[QUEUE], concurrency=1, wait=not once, delete_jobs="successful")
