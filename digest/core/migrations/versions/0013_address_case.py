"""subscribers: one mailbox, one subscriber — address keys ignore case; duplicates merged

Keys used to keep the local part's case, so ``ADA@EXAMPLE.COM`` and
``ada@example.com`` were two subscribers. Every key is lower-cased now (the
domain already was, an IDN domain in its Unicode form), and the rows that
then share a key are merged:

- the oldest row (earliest ``created_at``, then lowest id) stays, with its id,
  address as typed and ``created_at``; it takes the most restrictive status of
  the group (complained > bounced > unsubscribed > paused > pending > active)
  and that row's ``status_changed_at``; the earliest ``confirmed_at``, the latest
  of the other stamps; name and time zone filled from the others when empty,
  attributes merged (the oldest row's values win);
- each other row's ledger rows move to the kept subscriber, except for an
  edition the kept one already has a row for (both were mailed: the ledger
  keeps both rows, so each edition's counts stay what they were);
- each other row stays, anonymized as an erased row is (``erased-ID@erased.invalid``,
  no name, time zone or attributes, ``unsubscribed``), with ``merged_into_id``
  naming the kept subscriber: the links in the mails it was sent (tokens carry
  its id) now act for the kept one.

Erased rows are left alone (their keys are ``erased:ID``). Downgrade drops
the column only: merged rows stay merged, keys stay lower-case.

Revision ID: 0013_address_case
Revises: 0012_signing_key
Create Date: 2026-12-02 05:00:00
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from digest.core.db import UTCDateTime

revision: str = "0013_address_case"
down_revision: str | None = "0012_signing_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Most restrictive last: the merged subscriber takes the highest of its group.
RANK = ("active", "pending", "paused", "unsubscribed", "bounced", "complained")
# Stamps the merged subscriber takes the latest of.
LATEST = (
    "unsubscribed_at",
    "bounced_at",
    "complained_at",
    "paused_at",
    "last_confirmation_sent_at",
)

subscribers = sa.table(
    "subscribers",
    sa.column("id", sa.Integer),
    sa.column("email", sa.String),
    sa.column("email_key", sa.String),
    sa.column("name", sa.String),
    sa.column("status", sa.String),
    sa.column("timezone", sa.String),
    sa.column("attributes", sa.JSON),
    sa.column("created_at", UTCDateTime),
    sa.column("status_changed_at", UTCDateTime),
    sa.column("confirmed_at", UTCDateTime),
    *(sa.column(c, UTCDateTime) for c in LATEST),
    sa.column("erased_at", UTCDateTime),
    sa.column("merged_into_id", sa.Integer),
)
deliveries = sa.table(
    "deliveries",
    sa.column("id", sa.Integer),
    sa.column("edition_id", sa.Integer),
    sa.column("subscriber_id", sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(subscribers).where(subscribers.c.erased_at.is_(None))).mappings()
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["email_key"].lower()].append(dict(row))
    now = datetime.now(UTC)
    kept: list[dict[str, Any]] = []
    # Every duplicate gives up its key first: the unique index never sees two rows on one key.
    for key, group in groups.items():
        group.sort(key=lambda r: (r["created_at"], r["id"]))
        winner, losers = group[0], group[1:]
        for loser in losers:
            _merge_away(conn, loser["id"], winner["id"], now)
        if losers or winner["email_key"] != key:
            kept.append({**_merged(group), "email_key": key})
    for values in kept:
        conn.execute(
            sa.update(subscribers).where(subscribers.c.id == values.pop("id")).values(values)
        )


def _merged(group: list[dict[str, Any]]) -> dict[str, Any]:
    """The kept subscriber's new values from its group (oldest first); see the docstring."""
    winner = group[0]
    decider = max(group, key=lambda r: (RANK.index(r["status"]), r["status_changed_at"]))
    values: dict[str, Any] = {
        "id": winner["id"],
        "status": decider["status"],
        "status_changed_at": decider["status_changed_at"],
        "confirmed_at": min((r["confirmed_at"] for r in group if r["confirmed_at"]), default=None),
        "name": next((r["name"] for r in group if r["name"]), ""),
        "timezone": next((r["timezone"] for r in group if r["timezone"]), None),
        "attributes": {k: v for r in reversed(group) for k, v in (r["attributes"] or {}).items()},
    }
    for column in LATEST:
        values[column] = max((r[column] for r in group if r[column]), default=None)
    return values


def _merge_away(conn: sa.Connection, loser: int, winner: int, now: datetime) -> None:
    """Move ``loser``'s ledger rows to ``winner`` (editions it has none for) and anonymize it."""
    taken = sa.select(deliveries.c.edition_id).where(deliveries.c.subscriber_id == winner)
    conn.execute(
        sa.update(deliveries)
        .where(deliveries.c.subscriber_id == loser, deliveries.c.edition_id.not_in(taken))
        .values(subscriber_id=winner)
    )
    conn.execute(
        sa.update(subscribers)
        .where(subscribers.c.id == loser)
        .values(
            email=f"erased-{loser}@erased.invalid",
            email_key=f"erased:{loser}",
            name="",
            timezone=None,
            attributes={},
            status="unsubscribed",
            status_changed_at=now,
            unsubscribed_at=now,
            erased_at=now,
            merged_into_id=winner,
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("merged_into_id")
