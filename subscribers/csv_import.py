"""CSV import of subscribers.

The whole file is checked before anything is stored. Columns: ``email``
(required), ``name``, ``timezone``, ``status``, ``source`` and the lifecycle
timestamps (what subscribers.csv_export writes); any other column becomes a
custom attribute. An export imported into an empty database gives the same export.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.errors import ImportRejected, RowError, SubscriberError
from subscribers.addresses import check_address, check_name, check_timezone
from subscribers.csv_export import RESERVED, TIMESTAMP_FIELDS
from subscribers.lifecycle import STAMPS, SUPPRESSED
from subscribers.models import Subscriber
from subscribers.optin import Confirmation
from subscribers.service import CHUNK, erased_keys
from subscribers.status import SubscriberSource, SubscriberStatus

MAX_BYTES = 50_000_000
PROGRESS_STEP = 2_000


@dataclass
class CsvRow:
    line: int
    email: str
    key: str
    name: str
    status: SubscriberStatus | None = None
    source: str | None = None
    timezone: str | None = None
    stamps: dict[str, datetime] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    # The file's header: which fields an --update may change.
    columns: frozenset[str] = frozenset()


class RowCounter(Protocol):
    """What an import counts its rows off to, stage by stage (the CLI's progress bar)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, n: int) -> None: ...


@dataclass(frozen=True)
class ImportOptions:
    pending: bool = False
    update: bool = False
    skip_invalid: bool = False
    # The confirmation rate limit (DIGEST_CONFIRM_INTERVAL_MINUTES) for reminders.
    confirm_interval: timedelta = timedelta(minutes=10)


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


def _parse_time(raw: str, column: str) -> datetime | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise SubscriberError("", f"{column}: not an ISO 8601 time: {raw!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_record(
    line: int, header: list[str], record: list[str], check_deliverability: bool
) -> CsvRow:
    cells = dict(zip(header, record, strict=True))
    email, key = check_address(cells["email"], check_deliverability)
    row = CsvRow(line, email, key, check_name(cells.get("name", "")))
    row.timezone = check_timezone(cells.get("timezone"))
    status = cells.get("status", "").strip().lower()
    if status:
        try:
            row.status = SubscriberStatus(status)
        except ValueError:
            raise SubscriberError("", f"unknown status {status!r}") from None
    source = cells.get("source", "").strip().lower()
    if source:
        try:
            row.source = SubscriberSource(source).value
        except ValueError:
            raise SubscriberError("", f"unknown source {source!r}") from None
    for column in TIMESTAMP_FIELDS:
        when = _parse_time(cells.get(column, ""), column)
        if when is not None:
            row.stamps[column] = when
    row.attributes = {k: v for k, v in cells.items() if k not in RESERVED and k and v != ""}
    return row


def _delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    return ";" if first.count(";") > first.count(",") else ","


def read_rows(path: Path, check_deliverability: bool = False) -> list[CsvRow]:
    """Parse and validate every row; raise ImportRejected listing each bad row."""
    rows, errors = parse_file(path, check_deliverability)
    if errors:
        raise ImportRejected(str(path), errors)
    return rows


def parse_file(
    path: Path, check_deliverability: bool = False, progress: RowCounter | None = None
) -> tuple[list[CsvRow], list[RowError]]:
    """The valid rows and an error per bad row; ImportRejected if the file as a whole is bad."""
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubscriberError("", f"{name}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ImportRejected(name, [RowError(name, 1, f"file larger than {MAX_BYTES} bytes")])
    if b"\0" in data:
        raise ImportRejected(name, [RowError(name, 1, "binary file (contains NUL bytes)")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportRejected(name, [RowError(name, line, "not UTF-8 text")]) from None
    if not text.strip():
        raise ImportRejected(name, [RowError(name, 1, "empty file (expected a header row)")])

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except csv.Error as exc:
        raise ImportRejected(name, [RowError(name, 1, f"bad CSV header: {exc}")]) from None
    if "email" not in header:
        raise ImportRejected(
            name, [RowError(name, 1, f"header row has no 'email' column (found {header})")]
        )
    doubled = sorted({h for h in header if h and header.count(h) > 1})
    if doubled:
        raise ImportRejected(name, [RowError(name, 1, f"repeated column(s) {doubled}")])

    if progress is not None:
        progress.start("checking rows", max(text.count("\n"), 1))
    rows: list[CsvRow] = []
    errors: list[RowError] = []
    done = 0
    while True:
        # A quoted field may span lines: blame a record on the line it starts on.
        line = reader.line_num + 1
        if progress is not None and line - done >= PROGRESS_STEP:
            progress.advance(line - done)
            done = line
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(name, line, f"bad CSV: {exc}"))
            break
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            problem = f"{len(record)} fields, header has {len(header)}"
            if any("\n" in cell for cell in record):
                problem += " (an unclosed quote runs on into the lines below?)"
            errors.append(RowError(name, line, problem))
            continue
        try:
            rows.append(_parse_record(line, header, record, check_deliverability))
        except SubscriberError as exc:
            errors.append(RowError(name, line, str(exc)))
    for row in rows:
        row.columns = frozenset(header)
    return rows, errors


def _values(row: CsvRow, source: str, now: datetime, pending: bool) -> dict[str, Any]:
    status = row.status or SubscriberStatus.ACTIVE
    stamps = dict(row.stamps)
    if pending and status not in SUPPRESSED:
        # The file's word is not consent enough: the address confirms itself.
        status = SubscriberStatus.PENDING
        stamps = {k: v for k, v in stamps.items() if k == "created_at"}
    created = stamps.pop("created_at", now)
    stamp = STAMPS.get(status)
    if stamp is not None and stamp not in stamps:
        stamps[stamp] = now
    changed = max([created, *stamps.values()])
    return {
        "email": row.email,
        "email_key": row.key,
        "name": row.name,
        "status": status,
        "source": row.source or source,
        "timezone": row.timezone,
        "attributes": row.attributes,
        "created_at": created,
        "status_changed_at": changed,
        "last_confirmation_sent_at": now
        if status == SubscriberStatus.PENDING and pending
        else None,
        **{column: stamps.get(column) for column in TIMESTAMP_FIELDS[1:]},
    }


def _changes(row: CsvRow, known: Any) -> dict[str, Any] | None:
    """The --update of a known subscriber from ``row``: only the columns the file has."""
    values = {"name": known.name, "timezone": known.timezone, "attributes": known.attributes}
    if "name" in row.columns:
        values["name"] = row.name
    if "timezone" in row.columns:
        values["timezone"] = row.timezone
    if row.columns - RESERVED:
        values["attributes"] = {**(known.attributes or {}), **row.attributes}
    if values == {"name": known.name, "timezone": known.timezone, "attributes": known.attributes}:
        return None
    return {"id": known.id, **values}


def import_csv(
    session: Session,
    path: Path,
    source: str = "csv",
    check_deliverability: bool = False,
    options: ImportOptions | None = None,
    progress: RowCounter | None = None,
) -> CsvReport:
    """Import a CSV; all or nothing unless ``options.skip_invalid``.

    Known addresses are left as they are (``options.update``: their name, time
    zone and attributes are updated) and reported. An address that
    unsubscribed, bounced, complained or was erased is never (re)activated nor
    updated: it is reported as suppressed. With ``options.pending`` new
    addresses are pending and the report lists the subscribers owed a
    confirmation mail, at most one per address per ``options.confirm_interval``;
    this module sends nothing (digest.mail.confirmation mails them after commit).
    """
    opts = options or ImportOptions()
    rows, errors = parse_file(path, check_deliverability, progress)
    if errors and not opts.skip_invalid:
        raise ImportRejected(str(path), errors)
    report = CsvReport(skipped=errors)
    keys = [r.key for r in rows]
    known: dict[str, Any] = {}
    for start in range(0, len(keys), CHUNK):
        found = session.execute(
            select(
                Subscriber.id,
                Subscriber.email_key,
                Subscriber.status,
                Subscriber.name,
                Subscriber.timezone,
                Subscriber.attributes,
                Subscriber.last_confirmation_sent_at,
            ).where(Subscriber.email_key.in_(keys[start : start + CHUNK]))
        )
        known.update({k.email_key: k for k in found})
    erased = erased_keys(session, keys)
    seen: set[str] = set()
    now = utcnow()
    new: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    remind: list[int] = []
    for row in rows:
        if row.key in seen:
            report.repeated_in_file.append(row.email)
            continue
        seen.add(row.key)
        old = known.get(row.key)
        if row.key in erased:
            report.suppressed.append((row.email, "erased"))
        elif old is not None and old.status in SUPPRESSED:
            report.suppressed.append((row.email, str(old.status)))
        elif old is not None:
            report.already_known.append(row.email)
            change = _changes(row, old) if opts.update else None
            if change is not None:
                updates.append(change)
            if opts.pending and old.status == SubscriberStatus.PENDING:
                last = old.last_confirmation_sent_at
                if last is None or now - last >= opts.confirm_interval:
                    remind.append(old.id)
        else:
            new.append(_values(row, source, now, opts.pending))
    if progress is not None:
        progress.start("importing", len(new) + len(updates))
    # render_nulls: every row has the same columns, so each chunk is one executemany.
    add = insert(Subscriber).execution_options(render_nulls=True)
    for start in range(0, len(new), CHUNK):
        session.execute(add, new[start : start + CHUNK])
        if progress is not None:
            progress.advance(len(new[start : start + CHUNK]))
    for start in range(0, len(updates), CHUNK):
        session.execute(update(Subscriber), updates[start : start + CHUNK])
        if progress is not None:
            progress.advance(len(updates[start : start + CHUNK]))
    if remind:
        for start in range(0, len(remind), CHUNK):
            session.execute(
                update(Subscriber)
                .where(Subscriber.id.in_(remind[start : start + CHUNK]))
                .values(last_confirmation_sent_at=now)
            )
    report.added = len(new)
    report.updated = len(updates)
    session.flush()
    if opts.pending:
        report.to_confirm = _owed_confirmations(session, new, remind)
    return report


def _owed_confirmations(
    session: Session, new: list[dict[str, Any]], remind: list[int]
) -> list[Confirmation]:
    """The confirmation mails an import --pending owes: new pending rows and reminders."""
    keys = [v["email_key"] for v in new if v["status"] == SubscriberStatus.PENDING]
    found: list[Confirmation] = []
    for column, values in ((Subscriber.email_key, keys), (Subscriber.id, remind)):
        for start in range(0, len(values), CHUNK):
            found.extend(
                Confirmation(i, e, n)
                for i, e, n in session.execute(
                    select(Subscriber.id, Subscriber.email, Subscriber.name).where(
                        column.in_(values[start : start + CHUNK])
                    )
                )
            )
    return sorted(found, key=lambda c: c.subscriber_id)
