"""The clock process: APScheduler 3.x triggering scheduled digests. It only triggers work."""

from __future__ import annotations

import logging
import signal
from datetime import datetime
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from digest import delivery, editions
from digest.db import transaction
from digest.errors import ConfigError, DigestError
from digest.settings import Settings
from digest.smtp import SmtpTransport, parse_smtp_url

log = logging.getLogger("digest.clock")
MISFIRE_GRACE_SECONDS = 3600


def make_trigger(settings: Settings) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(settings.schedule, timezone=settings.timezone)
    except (ValueError, LookupError) as exc:
        raise ConfigError("DIGEST_SCHEDULE", f"{settings.schedule!r}: {exc}") from None


def run_slot(settings: Settings, factory: sessionmaker[Session], slot: datetime) -> int | None:
    """Build the edition for one slot (once: the slot key is UNIQUE) and send it."""
    slot_key = f"{settings.schedule}|{slot.isoformat()}"
    try:
        with transaction(factory) as s:
            built = editions.build(s, slot_key=slot_key)
            edition_id = built.id if built else None
    except IntegrityError:
        log.info("slot %s already has an edition; nothing to do", slot_key)
        return None
    if edition_id is None:
        log.info("slot %s: no new stories, no edition", slot_key)
        return None
    transport = SmtpTransport(parse_smtp_url(settings.smtp_url), timeout=settings.smtp_timeout)
    summary = delivery.send_edition(settings, factory, str(edition_id), transport)
    log.info(
        "slot %s: edition %s sent %s, failed %s", slot_key, edition_id, summary.sent, summary.failed
    )
    return edition_id


def run_clock(settings: Settings, factory: sessionmaker[Session]) -> None:
    """Run until SIGTERM/SIGINT, firing at each slot of DIGEST_SCHEDULE."""
    trigger = make_trigger(settings)
    scheduler = BlockingScheduler(timezone=settings.timezone)

    def job() -> None:
        slot = datetime.now(trigger.timezone).replace(second=0, microsecond=0)
        try:
            run_slot(settings, factory, slot)
        except DigestError as exc:
            log.error("scheduled digest failed: %s", exc)

    scheduler.add_job(
        job,
        trigger,
        id="digest",
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
        coalesce=True,
        max_instances=1,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping the clock", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    log.info("clock started: %r in %s", settings.schedule, settings.timezone)
    scheduler.start()
