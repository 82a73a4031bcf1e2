"""The clock's bounce scan: every DIGEST_BOUNCE_INTERVAL_MINUTES, the same scan as
`digest bounces scan`, reported in the log (a failure is one line; the clock goes on)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from digest.core.errors import DigestError
from digest.core.settings import Settings
from digest.delivery import intake

BOUNCES_JOB = "bounces"
log = logging.getLogger("digest.clock")


def wanted(settings: Settings) -> bool:
    """Whether the clock scans at all: a mailbox is set and the interval is not 0."""
    return bool(settings.bounce_mailbox) and settings.bounce_interval_minutes > 0


def scan_bounces(settings: Settings, factory: sessionmaker[Session]) -> bool:
    """Scan the bounce mailbox once; False (and an error line) when it could not be read."""
    try:
        scanned = intake.scan(settings, lambda: factory)
    except DigestError as exc:
        log.error("bounce scan failed: %s", exc)
        return False
    log.info("bounces scanned: %s: %s", scanned.mailbox, scanned.summary.describe())
    return True
