"""CSV import of subscribers: the whole file is checked before anything is stored."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db import utcnow
from digest.errors import ImportRejected, RowError, SubscriberError
from subscribers.addresses import check_address, check_name
from subscribers.models import Subscriber, SubscriberStatus

MAX_BYTES = 50_000_000


@dataclass
class CsvRow:
    line: int
    email: str
    key: str
    name: str


@dataclass
class CsvReport:
    added: int = 0
    already_known: list[str] = field(default_factory=list)
    repeated_in_file: list[str] = field(default_factory=list)


def read_rows(path: Path) -> list[CsvRow]:
    """Parse and validate every row; raise ImportRejected listing each bad row."""
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

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except csv.Error as exc:
        raise ImportRejected(name, [RowError(name, 1, f"bad CSV header: {exc}")]) from None
    if "email" not in header:
        raise ImportRejected(
            name, [RowError(name, 1, f"header row has no 'email' column (found {header})")]
        )
    email_col = header.index("email")
    name_col = header.index("name") if "name" in header else None

    rows: list[CsvRow] = []
    errors: list[RowError] = []
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                errors.append(
                    RowError(name, line, f"{len(record)} fields, header has {len(header)}")
                )
                continue
            try:
                email, key = check_address(record[email_col])
                person = check_name(record[name_col] if name_col is not None else "")
            except SubscriberError as exc:
                errors.append(RowError(name, line, str(exc)))
                continue
            rows.append(CsvRow(line, email, key, person))
    except csv.Error as exc:
        errors.append(RowError(name, reader.line_num, f"bad CSV: {exc}"))
    if errors:
        raise ImportRejected(name, errors)
    return rows


def import_csv(session: Session, path: Path, source: str = "csv") -> CsvReport:
    """Import a CSV all or nothing; known addresses are left as they are and reported."""
    rows = read_rows(path)
    report = CsvReport()
    keys = [r.key for r in rows]
    known: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        known.update(
            session.scalars(select(Subscriber.email_key).where(Subscriber.email_key.in_(chunk)))
        )
    seen: set[str] = set()
    now = utcnow()
    for row in rows:
        if row.key in known:
            report.already_known.append(row.email)
            continue
        if row.key in seen:
            report.repeated_in_file.append(row.email)
            continue
        seen.add(row.key)
        session.add(
            Subscriber(
                email=row.email,
                email_key=row.key,
                name=row.name,
                status=SubscriberStatus.ACTIVE,
                source=source,
                created_at=now,
                status_changed_at=now,
            )
        )
        report.added += 1
    session.flush()
    return report
