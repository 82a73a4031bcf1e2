"""CSV import of subscribers: all or nothing, known and suppressed addresses reported.

subscribers.csv_parse reads and checks the file before anything is stored.
An export (subscribers.csv_export) imported into an empty database gives the
same export.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import insert, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from digest.core.db import utcnow
from digest.core.errors import ImportRejected, RowError
from subscribers.csv_export import RESERVED, TIMESTAMP_FIELDS
from subscribers.csv_parse import CsvRow, RowCounter, parse_file
from subscribers.lifecycle import STAMPS, SUPPRESSED
from subscribers.models import Subscriber
from subscribers.optin import Confirmation
from subscribers.service import CHUNK, erased_keys
from subscribers.status import Cadence, SubscriberStatus

T = TypeVar("T")


@dataclass(frozen=True)
class ImportOptions:
    pending: bool = False
    update: bool = False
    skip_invalid: bool = False
    # The confirmation rate limit (DIGEST_CONFIRM_INTERVAL_MINUTES) for reminders.
    confirm_interval: timedelta = timedelta(minutes=10)
    # The cadence of new subscribers whose row names none (DIGEST_DEFAULT_CADENCE).
    default_cadence: str = Cadence.DAILY


@dataclass
class CsvReport:
    added: int = 0
    updated: int = 0
    # Rows left out by --skip-invalid (line and reason).
    skipped: list[RowError] = field(default_factory=list)
    # --pending: the pending subscribers owed a confirmation mail (new ones, and known
    # ones the rate limit lets be reminded), for the caller to mail after commit.
    to_confirm: list[Confirmation] = field(default_factory=list)
    already_known: list[str] = field(default_factory=list)
    repeated_in_file: list[str] = field(default_factory=list)
    # (address as in the file, why): unsubscribed, bounced, complained or erased
    suppressed: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Plan:
    """What an import writes, sorted out of the rows before anything is stored."""

    now: datetime
    # Insert values of the new subscribers.
    new: list[dict[str, Any]] = field(default_factory=list)
    # --update: the changes to known subscribers (with their id).
    updates: list[dict[str, Any]] = field(default_factory=list)
    # --pending: known pending subscribers whose rate limit allows a reminder.
    remind: list[int] = field(default_factory=list)


def import_csv(
    session: Session,
    path: Path,
    source: str = "csv",
    check_deliverability: bool = False,
    options: ImportOptions | None = None,
    progress: RowCounter | None = None,
    *,
    smtputf8: bool = False,
) -> CsvReport:
    """Import a CSV; all or nothing unless ``options.skip_invalid``.

    Addresses are known whatever their case (``subscribers.addresses``); a
    non-ASCII local part is a bad row unless ``smtputf8``. Known addresses are
    left as they are (``options.update``: their name, time zone, attributes,
    topics and cadence are updated, those the file has columns for) and reported. An address that
    unsubscribed, bounced, complained or was erased is never (re)activated nor
    updated: it is reported as suppressed. With ``options.pending`` new
    addresses are pending and the report lists the subscribers owed a
    confirmation mail, at most one per address per ``options.confirm_interval``;
    this module sends nothing (digest.mail.confirmation mails them after commit).
    """
    opts = options or ImportOptions()
    rows, errors = parse_file(path, check_deliverability, progress, smtputf8=smtputf8)
    if errors and not opts.skip_invalid:
        raise ImportRejected(str(path), errors)
    report = CsvReport(skipped=errors)
    plan = _plan(session, rows, source, opts, report)
    _store(session, plan, progress)
    report.added = len(plan.new)
    report.updated = len(plan.updates)
    session.flush()
    if opts.pending:
        report.to_confirm = _owed_confirmations(session, plan)
    return report


def _plan(
    session: Session, rows: list[CsvRow], source: str, opts: ImportOptions, report: CsvReport
) -> _Plan:
    """Sort the rows into new, known and suppressed ones (each reported) and plan the writes."""
    keys = [r.key for r in rows]
    known = _known(session, keys)
    erased = erased_keys(session, [(r.email, r.key) for r in rows])
    plan = _Plan(utcnow())
    seen: set[str] = set()
    for row in rows:
        if row.key in seen:
            report.repeated_in_file.append(row.email)
            continue
        seen.add(row.key)
        old = known.get(row.key)
        why = _suppressed_because(old, row.key in erased)
        if why is not None:
            report.suppressed.append((row.email, why))
        elif old is not None:
            report.already_known.append(row.email)
            _plan_known(plan, row, old, opts)
        else:
            plan.new.append(_values(row, source, plan.now, opts))
    return plan


def _known(session: Session, keys: list[str]) -> dict[str, Any]:
    """The subscribers already there, by address key (only the columns the import reads)."""
    known: dict[str, Any] = {}
    for chunk in _chunks(keys):
        found = session.execute(
            select(
                Subscriber.id,
                Subscriber.email_key,
                Subscriber.status,
                Subscriber.name,
                Subscriber.timezone,
                Subscriber.attributes,
                Subscriber.topics,
                Subscriber.cadence,
                Subscriber.last_confirmation_sent_at,
            ).where(Subscriber.email_key.in_(chunk))
        )
        known.update({k.email_key: k for k in found})
    return known


def _suppressed_because(old: Any, erased: bool) -> str | None:
    """Why an address may be neither added nor changed (erased, or its status); None if it may."""
    if erased:
        return "erased"
    if old is not None and old.status in SUPPRESSED:
        return str(old.status)
    return None


def _plan_known(plan: _Plan, row: CsvRow, old: Any, opts: ImportOptions) -> None:
    """A known subscriber: its --update change, a --pending reminder if one is due."""
    change = _changes(row, old) if opts.update else None
    if change is not None:
        plan.updates.append(change)
    if opts.pending and _reminder_due(old, plan.now, opts.confirm_interval):
        plan.remind.append(old.id)


def _reminder_due(old: Any, now: datetime, interval: timedelta) -> bool:
    last = old.last_confirmation_sent_at
    return old.status == SubscriberStatus.PENDING and (last is None or now - last >= interval)


def _values(row: CsvRow, source: str, now: datetime, opts: ImportOptions) -> dict[str, Any]:
    """The insert values of a new subscriber."""
    pending = opts.pending
    status, stamps = _first_status(row, pending)
    created = stamps.pop("created_at", now)
    stamp = STAMPS.get(status)
    if stamp is not None and stamp not in stamps:
        stamps[stamp] = now
    return {
        "email": row.email,
        "email_key": row.key,
        "name": row.name,
        "status": status,
        "source": row.source or source,
        "timezone": row.timezone,
        "attributes": row.attributes,
        "topics": row.topics or [],
        "cadence": row.cadence or opts.default_cadence,
        "created_at": created,
        "status_changed_at": max([created, *stamps.values()]),
        "last_confirmation_sent_at": now
        if status == SubscriberStatus.PENDING and pending
        else None,
        **{column: stamps.get(column) for column in TIMESTAMP_FIELDS[1:]},
    }


def _first_status(row: CsvRow, pending: bool) -> tuple[SubscriberStatus, dict[str, datetime]]:
    """The status a new subscriber starts in, and which of the file's timestamps it keeps."""
    status = row.status or SubscriberStatus.ACTIVE
    if pending and status not in SUPPRESSED:
        # The file's word is not consent enough: the address confirms itself.
        return SubscriberStatus.PENDING, {k: v for k, v in row.stamps.items() if k == "created_at"}
    return status, dict(row.stamps)


def _changes(row: CsvRow, known: Any) -> dict[str, Any] | None:
    """The --update of a known subscriber from ``row``: only the columns the file has."""
    before = {
        "name": known.name,
        "timezone": known.timezone,
        "attributes": known.attributes,
        "topics": known.topics,
        "cadence": known.cadence,
    }
    values = dict(before)
    if "name" in row.columns:
        values["name"] = row.name
    if "timezone" in row.columns:
        values["timezone"] = row.timezone
    if row.topics is not None:
        values["topics"] = row.topics
    if row.cadence is not None:
        values["cadence"] = row.cadence
    if row.columns - RESERVED:
        values["attributes"] = {**(known.attributes or {}), **row.attributes}
    return None if values == before else {"id": known.id, **values}


def _store(session: Session, plan: _Plan, progress: RowCounter | None) -> None:
    """Insert the new subscribers, apply the updates, stamp the reminders (chunked)."""
    if progress is not None:
        progress.start("importing", len(plan.new) + len(plan.updates))
    # render_nulls: every row has the same columns, so each chunk is one executemany.
    add = insert(Subscriber).execution_options(render_nulls=True)
    for values in _chunks(plan.new):
        session.execute(add, values)
        if progress is not None:
            progress.advance(len(values))
    for changes in _chunks(plan.updates):
        session.execute(update(Subscriber), changes)
        if progress is not None:
            progress.advance(len(changes))
    for ids in _chunks(plan.remind):
        session.execute(
            update(Subscriber)
            .where(Subscriber.id.in_(ids))
            .values(last_confirmation_sent_at=plan.now)
        )


def _owed_confirmations(session: Session, plan: _Plan) -> list[Confirmation]:
    """The confirmation mails an import --pending owes: new pending rows and reminders."""
    keys = [v["email_key"] for v in plan.new if v["status"] == SubscriberStatus.PENDING]
    found = [
        *_confirmations_where(session, Subscriber.email_key, keys),
        *_confirmations_where(session, Subscriber.id, plan.remind),
    ]
    return sorted(found, key=lambda c: c.subscriber_id)


def _confirmations_where(
    session: Session, column: InstrumentedAttribute[Any], values: Sequence[Any]
) -> Iterator[Confirmation]:
    for chunk in _chunks(values):
        rows = session.execute(
            select(
                Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.token_version
            ).where(column.in_(chunk))
        )
        yield from (Confirmation(i, e, n, v) for i, e, n, v in rows)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
