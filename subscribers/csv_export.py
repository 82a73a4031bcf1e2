"""CSV and JSON export of subscribers, and the columns an export writes.

An export imported into an empty database (subscribers.csv_import) gives the
same export. A subscriber's topics are one cell, separated by ``|``
(empty: everything). CSV cells that a spreadsheet would run as a formula (starting
with ``=``, ``+``, ``-``, ``@``, tab or CR) are written with a leading ``'``,
which the import takes off again.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from subscribers.models import Subscriber
from subscribers.service import list_subscribers
from subscribers.status import SubscriberStatus

TIMESTAMP_FIELDS = (
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "bounced_at",
    "complained_at",
    "paused_at",
)
EXPORT_FIELDS = (
    "email",
    "name",
    "status",
    "source",
    "timezone",
    "topics",
    "cadence",
    *TIMESTAMP_FIELDS,
)
# Between topics in the CSV ``topics`` cell (``,`` and ``;`` delimit cells).
TOPIC_SEPARATOR = "|"
# Columns with a meaning of their own; any other column is a custom attribute.
RESERVED = frozenset(EXPORT_FIELDS)

# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_START = frozenset("=+-@\t\r")


def as_text_cell(value: str) -> str:
    """``value`` as a spreadsheet shows it as text: a leading ``'`` before a formula start.

    A value that itself starts with ``'`` gets one more, so ``from_text_cell``
    gives every value back exactly.
    """
    if value and (value[0] in FORMULA_START or value[0] == "'"):
        return "'" + value
    return value


def from_text_cell(cell: str) -> str:
    """The value ``as_text_cell`` wrote (a cell from elsewhere reads as a spreadsheet
    would: a leading ``'`` before a formula start marks text)."""
    if len(cell) > 1 and cell[0] == "'" and (cell[1] in FORMULA_START or cell[1] == "'"):
        return cell[1:]
    return cell


def export_record(sub: Subscriber) -> dict[str, Any]:
    """One subscriber as the export writes it (JSON form: attributes as an object)."""
    return {
        "email": sub.email,
        "name": sub.name,
        "status": str(sub.status),
        "source": sub.source,
        "timezone": sub.timezone or "",
        "topics": list(sub.topics or []),
        "cadence": sub.cadence,
        **{c: _iso(getattr(sub, c)) for c in TIMESTAMP_FIELDS},
        "attributes": dict(sub.attributes or {}),
    }


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def write_csv(records: Iterable[dict[str, Any]], out: Any) -> int:
    """Write export records as CSV (attributes flattened into their own columns)."""
    records = list(records)
    extra = sorted({k for r in records for k in r["attributes"]} - RESERVED)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([as_text_cell(c) for c in (*EXPORT_FIELDS, *extra)])
    for r in records:
        attrs = r["attributes"]
        cells = [_field(r, f) for f in EXPORT_FIELDS] + [
            _cell(attrs[k]) if k in attrs else "" for k in extra
        ]
        writer.writerow([as_text_cell(c) for c in cells])
    return len(records)


def _field(record: dict[str, Any], name: str) -> str:
    value = record[name]
    return TOPIC_SEPARATOR.join(value) if name == "topics" else str(value)


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def export_records(
    session: Session, status: SubscriberStatus | None = None
) -> list[dict[str, Any]]:
    """The export records of every live subscriber (or those with ``status``), in id order."""
    return [export_record(sub) for sub in list_subscribers(session, status)]
