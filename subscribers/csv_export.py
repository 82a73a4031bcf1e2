"""CSV and JSON export of subscribers, and the columns an export writes.

An export imported into an empty database (subscribers.csv_import) gives the
same export.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from subscribers.models import Subscriber

TIMESTAMP_FIELDS = (
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "bounced_at",
    "complained_at",
    "paused_at",
)
EXPORT_FIELDS = ("email", "name", "status", "source", "timezone", *TIMESTAMP_FIELDS)
# Columns with a meaning of their own; any other column is a custom attribute.
RESERVED = frozenset(EXPORT_FIELDS)


def export_record(sub: Subscriber) -> dict[str, Any]:
    """One subscriber as the export writes it (JSON form: attributes as an object)."""
    return {
        "email": sub.email,
        "name": sub.name,
        "status": str(sub.status),
        "source": sub.source,
        "timezone": sub.timezone or "",
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
    writer.writerow([*EXPORT_FIELDS, *extra])
    for r in records:
        attrs = r["attributes"]
        writer.writerow(
            [r[f] for f in EXPORT_FIELDS] + [_cell(attrs[k]) if k in attrs else "" for k in extra]
        )
    return len(records)


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
