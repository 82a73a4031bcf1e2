"""What the clock decided, per job and slot: built, skipped, missed, failed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.models import ClockRun
from digest.core.status import RunOutcome


def record(
    session: Session,
    job: str,
    outcome: RunOutcome,
    detail: str = "",
    slot_key: str | None = None,
    scheduled_for: datetime | None = None,
    edition_id: int | None = None,
) -> ClockRun:
    run = ClockRun(
        job=job,
        slot_key=slot_key,
        scheduled_for=scheduled_for,
        ran_at=utcnow(),
        outcome=outcome,
        detail=detail,
        edition_id=edition_id,
    )
    session.add(run)
    session.flush()
    return run


def last_runs(session: Session) -> dict[str, ClockRun]:
    """The newest run of each job."""
    runs: dict[str, ClockRun] = {}
    for run in session.scalars(select(ClockRun).order_by(ClockRun.id.desc()).limit(500)):
        runs.setdefault(run.job, run)
    return runs


def has_run_for(session: Session, job: str, key: str) -> bool:
    return (
        session.scalar(
            select(ClockRun.id).where(ClockRun.job == job, ClockRun.slot_key == key).limit(1)
        )
        is not None
    )


def recent(session: Session, count: int = 20) -> list[ClockRun]:
    """The clock's latest decisions, newest first."""
    return list(session.scalars(select(ClockRun).order_by(ClockRun.id.desc()).limit(count)))
