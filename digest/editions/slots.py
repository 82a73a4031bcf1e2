"""Schedule slots: the trigger DIGEST_SCHEDULE names, and pure decisions about slots
(which slot a moment belongs to, and its key)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from digest.core.errors import ConfigError
from digest.core.settings import Settings

# Windows searched backwards for the latest fire time, smallest first, so a
# per-minute schedule costs a few dozen steps and a yearly one still resolves.
LOOKBACK = (timedelta(hours=2), timedelta(days=2), timedelta(days=32), timedelta(days=367))


# Cron counts the days of the week from 0 = Sunday (7 is Sunday too); APScheduler's
# from_crontab passes the numbers on to its own 0 = Monday, a day late. Names agree.
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_days(field: str) -> str:
    """A cron day-of-week field with its numbers spelt as names (``1-5`` -> ``mon,...,fri``)."""
    if field == "*" or any(c.isalpha() for c in field):
        return field  # every day, or names: the same in both
    days: list[int] = []
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = 0, 6
        else:
            low, _, high = span.partition("-")
            if not (low.isdigit() and (high.isdigit() or not high)):
                raise ValueError(f"bad day of the week {part!r}")
            first, last = int(low), int(high or (6 if step else low))
        if (step and not step.isdigit()) or step == "0":
            raise ValueError(f"bad step in {part!r}")
        if not 0 <= first <= last <= 7:
            raise ValueError(f"day of the week out of range 0-7: {part!r}")
        days += [d % 7 for d in range(first, last + 1, int(step or 1))]
    return ",".join(_CRON_DAYS[d] for d in sorted(set(days)))


def cron_trigger(expression: str, zone: str | ZoneInfo) -> CronTrigger:
    """The trigger of a five-field cron ``expression`` in ``zone``, days counted as cron does."""
    fields = expression.split()
    if len(fields) == 5:
        fields[4] = _cron_days(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=zone)


def make_trigger(settings: Settings) -> CronTrigger:
    try:
        return cron_trigger(settings.schedule, settings.timezone)
    except (ValueError, LookupError) as exc:
        raise ConfigError("DIGEST_SCHEDULE", f"{settings.schedule!r}: {exc}") from None


def _after(trigger: CronTrigger, previous: datetime) -> datetime | None:
    """The first fire time strictly after ``previous``.

    APScheduler 3 resolves an ambiguous wall time (DST fall-back) to its first
    occurrence, which can lie before ``previous``: then take the second one.
    """
    t = trigger.get_next_fire_time(previous, previous + timedelta(microseconds=1))
    if t is None or t > previous:
        return t
    second = t.replace(fold=1).astimezone(UTC).astimezone(t.tzinfo)
    if second > previous:
        return second
    return trigger.get_next_fire_time(None, previous + timedelta(hours=1))


def fire_times(trigger: CronTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Fire times of ``trigger`` in ``[start, end]``, in time order."""
    times: list[datetime] = []
    t = trigger.get_next_fire_time(None, start)
    while t is not None and t <= end:
        times.append(t)
        t = _after(trigger, t)
    return times


def latest_slot(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The newest fire time at or before ``now`` (the slot a late run belongs to)."""
    for window in LOOKBACK:
        times = fire_times(trigger, now - window, now)
        if times:
            return times[-1]
    return None


def next_slot(trigger: CronTrigger, now: datetime) -> datetime | None:
    return trigger.get_next_fire_time(None, now)


def slot_key(schedule: str, timezone: str, slot: datetime) -> str:
    """The slot's identity: schedule, zone and wall-clock minute in that zone.

    A wall time that happens twice (DST fall-back) is one slot, so the
    second fire finds it taken; two clocks firing for one slot share the key.
    """
    local = slot.astimezone(ZoneInfo(timezone))
    return f"{schedule}|{timezone}|{local:%Y-%m-%dT%H:%M}"


def slot_date(key: str | None) -> date | None:
    """The wall-clock date of the slot a ``slot_key`` names (in the key's own zone), or
    None for an edition built by hand (no key) or a key of another shape."""
    if not key:
        return None
    try:
        return datetime.strptime(key.rsplit("|", 1)[-1], "%Y-%m-%dT%H:%M").date()
    except ValueError:
        return None


def local_instant(wall: datetime, zone: str) -> datetime:
    """The UTC instant at which wall-clock time ``wall`` (naive) happens in ``zone``.

    zoneinfo's rules (fold=0) settle the DST edge cases the way the clock
    does: a wall time skipped by spring-forward lands an hour later on the
    clock, one that happens twice (fall-back) means its first occurrence.
    """
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def wall_slot(schedule: str, zone: str, now: datetime) -> datetime | None:
    """The newest slot wall time (naive) of cron ``schedule`` reached in ``zone`` by ``now``."""
    slot = latest_slot(cron_trigger(schedule, ZoneInfo(zone)), now)
    return slot.replace(tzinfo=None) if slot is not None else None


def upcoming(trigger: CronTrigger, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times after ``now`` (fewer when the schedule ends)."""
    times: list[datetime] = []
    t = next_slot(trigger, now)
    while t is not None and len(times) < count:
        times.append(t)
        t = _after(trigger, t)
    return times
