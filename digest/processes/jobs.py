"""The clock's jobs: build the edition of a slot and open it for the workers, catch
up at start, local-time ticks, feed polls; each decision is recorded in the run log.

The clock never sends: it opens the edition (``handoff.open_for_workers``: the
ledger, and chunk tasks with the queue) and a `digest worker` sends it.

Each slot of DIGEST_SCHEDULE builds at most one edition: the edition carries
the slot key (UNIQUE), so two clocks, a restart or a double fire cannot make a
second one. A clock that starts within the grace time after a slot it has no
record of runs that slot at once; one that starts later records it as missed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction
from digest.core.errors import DigestError
from digest.core.settings import Settings
from digest.core.status import RunOutcome
from digest.editions import assemble
from digest.editions.slots import latest_slot, local_instant, slot_key, wall_slot
from digest.processes import runlog
from digest.processes.handoff import open_for_workers
from digest.sources import feeds
from digest.sources.fetch import FetchLimits
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus

log = logging.getLogger("digest.clock")
DIGEST_JOB = "digest"


def run_slot(
    settings: Settings,
    factory: sessionmaker[Session],
    slot: datetime,
    *,
    key: str | None = None,
    local_slot: datetime | None = None,
) -> int | None:
    """Build the edition for one slot (once: the slot key is UNIQUE) and open it for the workers.

    ``local_slot`` (local-time mode) makes each delivery wait for that wall
    time in its subscriber's zone. Returns the edition id when this call
    built it, else None. A failure to open (a failed check, nobody to send
    to) is recorded in the run log; the edition stays a draft.
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
            if built is None:  # another clock's edition took the stories since the count
                detail = "the new stories went into another clock's edition"
                runlog.record(s, DIGEST_JOB, RunOutcome.DUPLICATE, detail, key, slot)
                log.info("slot %s: %s", key, detail)
                return None
            edition_id = built.id
            runlog.record(
                s, DIGEST_JOB, RunOutcome.BUILT, f"{waiting} stories", key, slot, edition_id
            )
    except IntegrityError:
        with transaction(factory) as s:
            runlog.record(s, DIGEST_JOB, RunOutcome.DUPLICATE, "slot already built", key, slot)
        log.info("slot %s already has an edition (another clock took it)", key)
        return None
    log.info("slot %s: built edition %s from %s stories", key, edition_id, waiting)
    try:
        opened = open_for_workers(
            settings, factory, str(edition_id), local_slot=local_slot, slot=slot
        )
    except DigestError as exc:
        with transaction(factory) as s:
            runlog.record(s, DIGEST_JOB, RunOutcome.FAILED, str(exc), key, slot, edition_id)
        log.error("slot %s: edition %s could not be opened: %s", key, edition_id, exc)
        return edition_id
    log.info("slot %s: edition %s waits for a worker (%s pending)", key, edition_id, opened.pending)
    return edition_id


def catch_up(
    settings: Settings,
    factory: sessionmaker[Session],
    trigger: CronTrigger,
    now: datetime,
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
        run_slot(settings, factory, slot)
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
) -> int | None:
    """Local-time mode, run every minute: build the edition for the newest slot
    wall time that any subscriber's zone has reached (once) and open it.

    Each delivery waits for the slot's wall time in its subscriber's zone, so
    the edition is built when the earliest zone gets there; workers send each
    row once its time has come (they only pick up rows that are due).
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
            built = run_slot(settings, factory, first_instant, key=key, local_slot=wall)
        elif not done and ran_before:
            record_missed(settings, factory, first_instant, key)
    return built


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
