"""What the clock decided, per job and slot: built, skipped, missed, failed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from digest.core.db import Base, UTCDateTime, str_enum, utcnow


class RunOutcome(StrEnum):
    BUILT = "built"  # an edition was built for the slot and its send started
    SKIPPED = "skipped"  # too few new stories
    DUPLICATE = "duplicate"  # another clock already took the slot
    MISSED = "missed"  # the clock was down past the grace time
    FAILED = "failed"
    DONE = "done"  # a job without slots (feed polling) ran


class ClockRun(Base):
    __tablename__ = "clock_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(40), index=True)
    slot_key: Mapped[str | None] = mapped_column(String(100))
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[RunOutcome] = mapped_column(str_enum(RunOutcome))
    detail: Mapped[str] = mapped_column(Text, default="")
    edition_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("editions.id", ondelete="SET NULL")
    )


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
