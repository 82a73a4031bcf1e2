"""The clock process: APScheduler 3.x triggering scheduled digests. It only triggers work.

Each slot of DIGEST_SCHEDULE builds at most one edition: the edition carries
the slot key (UNIQUE), so two clocks, a restart or a double fire cannot make a
second one. A clock that starts within the grace time after a slot it has no
record of runs that slot at once; one that starts later records it as missed.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction, utcnow
from digest.core.errors import ConfigError, DigestError
from digest.core.settings import Settings
from digest.delivery import service
from digest.editions import assemble
from digest.editions.slots import latest_slot, local_instant, slot_key, wall_slot
from digest.processes import runlog
from digest.processes.runlog import RunOutcome
from digest.sources import feeds
from digest.sources.fetch import FetchLimits
from digest.transports.base import open_transport
from subscribers.models import Subscriber, SubscriberStatus

log = logging.getLogger("digest.clock")
DIGEST_JOB = "digest"


def make_trigger(settings: Settings) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(settings.schedule, timezone=settings.timezone)
    except (ValueError, LookupError) as exc:
        raise ConfigError("DIGEST_SCHEDULE", f"{settings.schedule!r}: {exc}") from None


def run_slot(
    settings: Settings,
    factory: sessionmaker[Session],
    slot: datetime,
    stop: threading.Event | None = None,
    *,
    key: str | None = None,
    local_slot: datetime | None = None,
) -> int | None:
    """Build the edition for one slot (once: the slot key is UNIQUE) and send it.

    Setting ``stop`` ends the send between two messages; `digest worker`
    (or `digest send`) finishes it. ``local_slot`` (local-time mode) makes
    each delivery wait for that wall time in its subscriber's zone. Returns
    the edition id when this call built it, else None.
    """
    key = key or slot_key(settings.schedule, settings.timezone, slot)
    try:
        with transaction(factory) as s:
            waiting = len(assemble.new_stories(s))
            if waiting < settings.min_stories:
                detail = (
                    f"{waiting} new stories, fewer than DIGEST_MIN_STORIES={settings.min_stories}"
                )
                runlog.record(s, DIGEST_JOB, RunOutcome.SKIPPED, detail, key, slot)
                log.info("slot %s skipped: %s", key, detail)
                return None
            built = assemble.build(s, slot_key=key)
            assert built is not None
            edition_id = built.id
            runlog.record(
                s, DIGEST_JOB, RunOutcome.BUILT, f"{waiting} stories", key, slot, edition_id
            )
    except IntegrityError:
        with transaction(factory) as s:
            runlog.record(s, DIGEST_JOB, RunOutcome.DUPLICATE, "slot already built", key, slot)
        log.info("slot %s already has an edition (another clock took it)", key)
        return None
    log.info("slot %s: built edition %s from %s stories; sending", key, edition_id, waiting)
    transport = open_transport(settings)
    try:
        summary = service.send_edition(
            settings, factory, str(edition_id), transport, stop=stop, local_slot=local_slot
        )
    except DigestError as exc:
        with transaction(factory) as s:
            runlog.record(s, DIGEST_JOB, RunOutcome.FAILED, str(exc), key, slot, edition_id)
        log.error("slot %s: edition %s send failed: %s", key, edition_id, exc)
        return edition_id
    log.info(
        "slot %s: edition %s sent %s, failed %s, unknown %s",
        key,
        edition_id,
        summary.sent,
        summary.failed,
        summary.unknown,
    )
    return edition_id


def catch_up(
    settings: Settings,
    factory: sessionmaker[Session],
    trigger: CronTrigger,
    now: datetime,
    stop: threading.Event | None = None,
) -> RunOutcome | None:
    """At start: run the latest slot if still within grace, else report it missed."""
    slot = latest_slot(trigger, now)
    if slot is None:
        return None
    key = slot_key(settings.schedule, settings.timezone, slot)
    with factory() as s:
        if runlog.has_run_for(s, DIGEST_JOB, key):
            log.info("slot %s already handled; waiting for the next slot", key)
            return None
    late = now - slot
    if late > timedelta(seconds=settings.misfire_grace_seconds):
        with factory() as s:
            first_start = not runlog.last_runs(s).get(DIGEST_JOB)
        if first_start:  # a new installation missed nothing
            log.info("first start: the next slot is the first one")
            return None
    if late <= timedelta(seconds=settings.misfire_grace_seconds):
        log.info(
            "slot %s was %ss ago and has not run: running it now", key, int(late.total_seconds())
        )
        run_slot(settings, factory, slot, stop)
        return RunOutcome.BUILT
    record_missed(settings, factory, slot)
    return RunOutcome.MISSED


def local_zones(session: Session, default_zone: str) -> set[str]:
    zones = session.scalars(
        select(Subscriber.timezone)
        .where(Subscriber.status == SubscriberStatus.ACTIVE, Subscriber.timezone.is_not(None))
        .distinct()
    )
    return {default_zone, *(z for z in zones if z)}


def local_key(schedule: str, wall: datetime) -> str:
    return f"{schedule}|local|{wall:%Y-%m-%dT%H:%M}"


def local_tick(
    settings: Settings,
    factory: sessionmaker[Session],
    now: datetime,
    stop: threading.Event | None = None,
) -> int | None:
    """Local-time mode, run every minute: build the edition for the newest slot
    wall time that any subscriber's zone has reached (once), then send what is due.

    Each delivery waits for the slot's wall time in its subscriber's zone, so
    the edition is built when the earliest zone gets there.
    """
    with factory() as s:
        zones = local_zones(s, settings.timezone)
    walls = [w for z in zones if (w := wall_slot(settings.schedule, z, now)) is not None]
    built: int | None = None
    if walls:
        wall = max(walls)
        key = local_key(settings.schedule, wall)
        with factory() as s:
            done = runlog.has_run_for(s, DIGEST_JOB, key)
            ran_before = bool(runlog.last_runs(s).get(DIGEST_JOB))
        first_instant = min(local_instant(wall, z) for z in zones)
        late = now - first_instant
        if not done and late <= timedelta(seconds=settings.misfire_grace_seconds):
            built = run_slot(settings, factory, first_instant, stop, key=key, local_slot=wall)
        elif not done and ran_before:
            record_missed(settings, factory, first_instant, key)
    send_due(settings, factory, stop)
    return built


def send_due(
    settings: Settings, factory: sessionmaker[Session], stop: threading.Event | None = None
) -> None:
    """Send the deliveries whose local time has come, in every running edition."""
    with factory() as s:
        todo = service.editions_with_pending(s)
    for edition_id in todo:
        if stop is not None and stop.is_set():
            return
        try:
            summary = service.send_edition(
                settings, factory, str(edition_id), open_transport(settings), stop=stop
            )
        except DigestError as exc:
            log.error("edition %s: sending due deliveries failed: %s", edition_id, exc)
            continue
        if summary.attempted:
            log.info("edition %s: sent %s due deliveries", edition_id, summary.sent)


FEEDS_JOB = "feeds"


def poll_feeds(settings: Settings, factory: sessionmaker[Session]) -> RunOutcome:
    """Fetch every feed once; failures are recorded on each feed and in the run log."""
    results = feeds.fetch_all(factory, FetchLimits.from_settings(settings))
    added = sum(r.added for r in results)
    failed = [r for r in results if r.error]
    detail = f"{len(results)} feeds, {added} new stories"
    if failed:
        detail += f", {len(failed)} failed (first: {failed[0].url}: {failed[0].error})"
    outcome = RunOutcome.FAILED if failed and len(failed) == len(results) else RunOutcome.DONE
    with transaction(factory) as s:
        runlog.record(s, FEEDS_JOB, outcome, detail)
    log.info("feeds polled: %s", detail)
    return outcome


def record_missed(
    settings: Settings, factory: sessionmaker[Session], slot: datetime, key: str | None = None
) -> None:
    key = key or slot_key(settings.schedule, settings.timezone, slot)
    detail = "the clock was not running; `digest send --now` builds and sends at once"
    with transaction(factory) as s:
        runlog.record(s, DIGEST_JOB, RunOutcome.MISSED, detail, key, slot)
    log.warning("slot %s missed: %s", key, detail)


def run_clock(settings: Settings, factory: sessionmaker[Session]) -> None:
    """Run until SIGTERM/SIGINT, firing at each slot of DIGEST_SCHEDULE."""
    trigger = make_trigger(settings)
    scheduler = BlockingScheduler(timezone=settings.timezone)
    stopping = threading.Event()

    def digest_job() -> None:
        slot = latest_slot(trigger, datetime.now(trigger.timezone))
        if slot is None:
            return
        try:
            run_slot(settings, factory, slot, stopping)
        except DigestError as exc:
            log.error("scheduled digest failed: %s", exc)

    def local_job() -> None:
        try:
            local_tick(settings, factory, datetime.now(UTC), stopping)
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

    def on_missed(event: JobExecutionEvent) -> None:
        if event.job_id == DIGEST_JOB:
            record_missed(settings, factory, event.scheduled_run_time)

    scheduler.add_listener(on_missed, EVENT_JOB_MISSED)

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping the clock", signum)
        stopping.set()
        if scheduler.running:
            # Wait for running jobs (they stop between messages once ``stopping`` is
            # set): exiting under a job thread still using the database is not clean.
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
            local_tick(settings, factory, datetime.now(UTC), stopping)
        else:
            catch_up(settings, factory, trigger, datetime.now(trigger.timezone), stopping)
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
