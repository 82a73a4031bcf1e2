"""Workers' heartbeats in the database: who is alive to send, by the database's clock.

A worker process registers a row (its claim owner id, host, pid), refreshes
``last_seen`` every ``BEAT_SECONDS`` and deletes the row on a clean exit. A
worker not seen for ``STALE_AFTER`` is taken for dead. Every time written or
compared here is the database's, so machines whose clocks disagree still agree
on who is alive. The thread that beats is ``digest.processes.heartbeat``.
"""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from digest.core.db import db_time
from digest.core.models import Delivery, Worker
from digest.delivery import claims, lifecycle

BEAT_SECONDS = 5.0
STALE_AFTER = timedelta(seconds=3 * BEAT_SECONDS)
FORGET_AFTER = timedelta(days=1)  # rows of workers that died are deleted after this


def beat(session: Session, worker_id: str, kind: str) -> None:
    """Register ``worker_id`` or refresh its ``last_seen``."""
    refreshed = claims.rows_updated(
        session, update(Worker).where(Worker.id == worker_id).values(last_seen=db_time())
    )
    if not refreshed:
        forgotten = db_time(-FORGET_AFTER.total_seconds())
        session.execute(delete(Worker).where(Worker.last_seen < forgotten))
        session.add(
            Worker(
                id=worker_id,
                host=claims.HOST,
                pid=os.getpid(),
                kind=kind,
                started_at=db_time(),
                last_seen=db_time(),
            )
        )


def leave(session: Session, worker_id: str) -> None:
    session.execute(delete(Worker).where(Worker.id == worker_id))


def alive(session: Session) -> list[Worker]:
    """Workers seen within ``STALE_AFTER``."""
    since = db_time(-STALE_AFTER.total_seconds())
    return list(session.scalars(select(Worker).where(Worker.last_seen >= since)))


def someone_sending(session: Session, edition_id: int) -> bool:
    """A worker is alive, or some sender (e.g. `digest send` in a terminal) holds a live claim."""
    if alive(session):
        return True
    held = session.scalar(
        select(Delivery.id)
        .where(
            Delivery.edition_id == edition_id,
            Delivery.state.in_(claims.HELD),
            Delivery.lease_expires_at >= db_time(),
        )
        .limit(1)
    )
    return held is not None


def stranded_editions(session: Session) -> list[int]:
    """Running editions holding claims whose lease has expired (their sender died or lost
    its database): a worker's send reaps them, so the edition can finish."""
    return lifecycle.running_editions_with(
        session, Delivery.state.in_(claims.HELD), Delivery.lease_expires_at < db_time()
    )


WAITING_FOR_WORKER = (
    "waiting for a worker: no `digest worker` has been seen in the last"
    f" {int(STALE_AFTER.total_seconds())} s; start one (or `digest serve --worker`)"
)
