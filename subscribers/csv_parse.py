"""Reading a subscriber CSV: every row checked, each bad one reported by its line.

Columns: ``email`` (required), ``name``, ``timezone``, ``status``, ``source``,
``topics`` (tags separated by ``|``), ``cadence`` and the lifecycle timestamps
(what subscribers.csv_export writes); any other column becomes a custom
attribute. subscribers.csv_import stores the rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

from digest.core.errors import ImportRejected, RowError, SubscriberError
from subscribers.addresses import check_address, check_name, check_timezone
from subscribers.csv_export import RESERVED, TIMESTAMP_FIELDS, TOPIC_SEPARATOR, from_text_cell
from subscribers.preferences import check_cadence, parse_topics
from subscribers.status import SubscriberSource, SubscriberStatus

MAX_BYTES = 50_000_000
PROGRESS_STEP = 2_000

Choice = TypeVar("Choice", bound=StrEnum)


@dataclass
class CsvRow:
    line: int
    email: str
    key: str
    name: str
    status: SubscriberStatus | None = None
    source: str | None = None
    timezone: str | None = None
    # None: the file has no topics column / an empty cadence cell (the defaults).
    topics: list[str] | None = None
    cadence: str | None = None
    stamps: dict[str, datetime] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    # The file's header: which fields an --update may change.
    columns: frozenset[str] = frozenset()


class RowCounter(Protocol):
    """What an import counts its rows off to, stage by stage (the CLI's progress bar)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, n: int) -> None: ...


def parse_file(
    path: Path,
    check_deliverability: bool = False,
    progress: RowCounter | None = None,
    *,
    smtputf8: bool = False,
) -> tuple[list[CsvRow], list[RowError]]:
    """The valid rows and an error per bad row; ImportRejected if the file as a whole is bad."""
    name = str(path)
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header = _read_header(name, reader)
    if progress is not None:
        progress.start("checking rows", max(text.count("\n"), 1))
    rows: list[CsvRow] = []
    errors: list[RowError] = []
    for line, record in _records(name, reader, errors, progress):
        try:
            rows.append(_parse_record(line, header, record, check_deliverability, smtputf8))
        except SubscriberError as exc:
            errors.append(RowError(name, line, str(exc)))
    columns = frozenset(header)
    for row in rows:
        row.columns = columns
    return rows, errors


def _whole_file(name: str, line: int, problem: str) -> ImportRejected:
    return ImportRejected(name, [RowError(name, line, problem)])


def _read_text(path: Path) -> str:
    """The file's text; ImportRejected if it is too large, binary, not UTF-8 or empty."""
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubscriberError("", f"{name}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise _whole_file(name, 1, f"file larger than {MAX_BYTES} bytes")
    if b"\0" in data:
        raise _whole_file(name, 1, "binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _whole_file(name, data[: exc.start].count(b"\n") + 1, "not UTF-8 text") from None
    if not text.strip():
        raise _whole_file(name, 1, "empty file (expected a header row)")
    return text


def _delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    return ";" if first.count(";") > first.count(",") else ","


def _read_header(name: str, reader: Iterator[list[str]]) -> list[str]:
    """The header row's column names (lower case); ImportRejected unless it is usable."""
    try:
        header = [from_text_cell(h.strip()).lower() for h in next(reader)]
    except csv.Error as exc:
        raise _whole_file(name, 1, f"bad CSV header: {exc}") from None
    if "email" not in header:
        raise _whole_file(name, 1, f"header row has no 'email' column (found {header})")
    doubled = sorted({h for h in header if h and header.count(h) > 1})
    if doubled:
        raise _whole_file(name, 1, f"repeated column(s) {doubled}")
    return header


def _records(
    name: str, reader: Any, errors: list[RowError], progress: RowCounter | None
) -> Iterator[tuple[int, list[str]]]:
    """Each record that is not blank, with its line; bad CSV syntax ends it (in ``errors``)."""
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
            return
        except csv.Error as exc:
            errors.append(RowError(name, line, f"bad CSV: {exc}"))
            return
        if any(cell.strip() for cell in record):
            yield line, record


def _parse_record(
    line: int, header: list[str], record: list[str], check_deliverability: bool, smtputf8: bool
) -> CsvRow:
    """One record as a row to import; SubscriberError saying what is wrong with it."""
    _check_field_count(header, record)
    # A leading ' before a formula start is the export's mark of text (see csv_export).
    cells = dict(zip(header, (from_text_cell(c) for c in record), strict=True))
    email, key = check_address(cells["email"], check_deliverability, smtputf8=smtputf8)
    name = check_name(cells.get("name", ""))
    timezone = check_timezone(cells.get("timezone"))
    status = _choice(SubscriberStatus, cells, "status")
    source = _choice(SubscriberSource, cells, "source")
    topics = parse_topics(cells["topics"], TOPIC_SEPARATOR) if "topics" in cells else None
    cadence = check_cadence(cells["cadence"]).value if cells.get("cadence", "").strip() else None
    return CsvRow(
        line,
        email,
        key,
        name,
        status=status,
        source=source.value if source is not None else None,
        timezone=timezone,
        topics=topics,
        cadence=cadence,
        stamps=_stamps(cells),
        attributes={k: v for k, v in cells.items() if k not in RESERVED and k and v != ""},
    )


def _check_field_count(header: list[str], record: list[str]) -> None:
    if len(record) != len(header):
        problem = f"{len(record)} fields, header has {len(header)}"
        if any("\n" in cell for cell in record):
            problem += " (an unclosed quote runs on into the lines below?)"
        raise SubscriberError("", problem)


def _choice(kind: type[Choice], cells: dict[str, str], column: str) -> Choice | None:
    """The ``kind`` the cell names (any case), None if it is empty."""
    raw = cells.get(column, "").strip().lower()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise SubscriberError("", f"unknown {column} {raw!r}") from None


def _stamps(cells: dict[str, str]) -> dict[str, datetime]:
    stamps: dict[str, datetime] = {}
    for column in TIMESTAMP_FIELDS:
        raw = cells.get(column)
        when = _parse_time(raw, column) if raw else None
        if when is not None:
            stamps[column] = when
    return stamps


def _parse_time(raw: str, column: str) -> datetime | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise SubscriberError("", f"{column}: not an ISO 8601 time: {raw!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
