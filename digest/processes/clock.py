"""The clock process (``digest schedule``): APScheduler 3.x firing the jobs of
``digest.processes.jobs`` at each slot of DIGEST_SCHEDULE (or every minute in
local-time mode) and polling feeds. It builds and opens editions and never
sends (workers do); exactly one clock runs. ``digest schedule --worker`` runs a
worker in a thread beside it (``digest.processes.worker.worker_alongside``).
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import utcnow
from digest.core.errors import DigestError
from digest.core.settings import Settings
from digest.editions.slots import latest_slot, make_trigger
from digest.processes import bounce_job, runlog
from digest.processes.jobs import (
    DIGEST_JOB,
    FEEDS_JOB,
    catch_up,
    local_tick,
    poll_feeds,
    record_missed,
    run_slot,
)

log = logging.getLogger("digest.clock")


def run_clock(
    settings: Settings,
    factory: sessionmaker[Session],
    stopping: threading.Event | None = None,
) -> None:
    """Run until SIGTERM/SIGINT, firing at each slot of DIGEST_SCHEDULE.

    The signal sets ``stopping`` (a worker running beside the clock stops on it too).
    """
    trigger = make_trigger(settings)
    # The clock says what it decided, one line each; APScheduler's own lines
    # ("Added job", "Running job", "executed successfully") only on trouble.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = BlockingScheduler(timezone=settings.timezone)
    stopping = stopping or threading.Event()

    def digest_job() -> None:
        slot = latest_slot(trigger, datetime.now(trigger.timezone))
        if slot is None:
            return
        try:
            run_slot(settings, factory, slot)
        except DigestError as exc:
            log.error("scheduled digest failed: %s", exc)

    def local_job() -> None:
        try:
            local_tick(settings, factory, datetime.now(UTC))
        except DigestError as exc:
            log.error("local-time digest failed: %s", exc)

    if settings.local_time:
        # Every minute: some subscriber's zone may have reached the slot's wall time.
        scheduler.add_job(
            local_job,
            CronTrigger(minute="*", timezone=UTC),
            id=DIGEST_JOB,
            misfire_grace_time=60,
            coalesce=True,
            max_instances=1,
        )
    else:
        scheduler.add_job(
            digest_job,
            trigger,
            id=DIGEST_JOB,
            misfire_grace_time=settings.misfire_grace_seconds,
            coalesce=True,
            max_instances=1,
        )

    if settings.feed_interval_minutes > 0:
        scheduler.add_job(
            lambda: poll_feeds(settings, factory),
            IntervalTrigger(minutes=settings.feed_interval_minutes),
            id=FEEDS_JOB,
            next_run_time=datetime.now(UTC),  # poll once at start, then on the interval
            coalesce=True,
            max_instances=1,
            misfire_grace_time=settings.feed_interval_minutes * 60,
        )

    if bounce_job.wanted(settings):
        scheduler.add_job(
            lambda: bounce_job.scan_bounces(settings, factory),
            IntervalTrigger(minutes=settings.bounce_interval_minutes),
            id=bounce_job.BOUNCES_JOB,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=settings.bounce_interval_minutes * 60,
        )

    def on_missed(event: JobExecutionEvent) -> None:
        if event.job_id == DIGEST_JOB:
            record_missed(settings, factory, event.scheduled_run_time)

    scheduler.add_listener(on_missed, EVENT_JOB_MISSED)

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping the clock", signum)
        stopping.set()
        if scheduler.running:
            # Wait for running jobs: exiting under a job thread still using the
            # database is not clean.
            scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "clock started: %r in %s, grace %ss, min stories %s",
        settings.schedule,
        settings.timezone,
        settings.misfire_grace_seconds,
        settings.min_stories,
    )
    try:
        if settings.local_time:
            local_tick(settings, factory, datetime.now(UTC))
        else:
            catch_up(settings, factory, trigger, datetime.now(trigger.timezone))
    except DigestError as exc:
        log.error("catch-up failed: %s", exc)
    if not stopping.is_set():
        scheduler.start()
    log.info("clock stopped")


def describe_schedule(settings: Settings, factory: sessionmaker[Session]) -> dict[str, Any]:
    """Next slot and the last run of each job, for `digest status`."""
    trigger = make_trigger(settings)
    upcoming = trigger.get_next_fire_time(None, utcnow().astimezone(trigger.timezone))
    with factory() as s:
        last = runlog.last_runs(s)
    return {
        "schedule": settings.schedule,
        "timezone": settings.timezone,
        "next_slot": upcoming.isoformat() if upcoming else None,
        "last_runs": {
            job: {
                "outcome": run.outcome.value,
                "slot": run.slot_key,
                "ran_at": run.ran_at.isoformat(),
                "detail": run.detail,
                "edition_id": run.edition_id,
            }
            for job, run in last.items()
        },
    }
