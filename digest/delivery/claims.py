"""Claims on delivery rows: leases, renewal, reaping, and each row's outcome.

Every write that moves a claimed row is conditional on its claim token, so a
worker whose lease expired (and whose rows were reaped) cannot overwrite what
another worker or the reaper decided. Claiming is one ``UPDATE … WHERE id IN
(SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``: on PostgreSQL concurrent
claimers skip each other's rows; on SQLite (where SQLAlchemy drops the
locking clause) the single statement holds the database's one write lock, so
claimers are serialised just as with ``BEGIN IMMEDIATE``.

Creating rows and changing an edition's status live in
``digest.delivery.lifecycle``.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, Integer, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from digest.core.db import db_time, utcnow
from digest.core.models import Delivery
from digest.core.status import DeliveryState
from subscribers.addresses import wire_address
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus

HOST = socket.gethostname()[:60]
HELD = (DeliveryState.CLAIMED, DeliveryState.SENDING)  # a claim holds the row
_instances: dict[int, str] = {}


def owner() -> str:
    """Who claims: ``host:pid:nonce``, unique per process instance.

    The nonce tells a process from a later one that got the same pid (or a
    container's pid 1 on another host with the same name); host and pid let a
    sender on the same host see that a claimer's process is gone.
    """
    pid = os.getpid()
    if pid not in _instances:
        _instances[pid] = f"{HOST}:{pid}:{secrets.token_hex(4)}"
    return _instances[pid]


def rows_updated(session: Session, stmt: Any) -> int:
    """Run an UPDATE and return how many rows it changed."""
    result: CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
    return int(result.rowcount)


@dataclass(frozen=True)
class Row:
    delivery_id: int
    subscriber_id: int
    email: str
    name: str
    token_version: int  # read with the claim: no query per message for the links
    # The address as RCPT TO carries it (an IDN domain as xn--), worked out once per row.
    envelope: str
    variant_id: int | None = None  # the story subset its message is built from
    topics: tuple[str, ...] = ()  # the subscriber's topics, named in the digest's header


@dataclass
class Claim:
    token: str
    rows: list[Row]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_owners(session: Session, edition_id: int) -> list[str]:
    """Claimers on this host whose process is gone (killed, crashed)."""
    owners = session.scalars(
        select(Delivery.claimed_by)
        .where(
            Delivery.edition_id == edition_id,
            Delivery.state.in_(HELD),
            Delivery.claimed_by.like(f"{HOST}:%"),
        )
        .distinct()
    ).all()
    dead = []
    for who in owners:
        if who == owner():
            continue
        parts = (who or "").split(":")
        pid = parts[1] if len(parts) > 1 else ""
        if pid.isdigit() and (not _pid_alive(int(pid)) or int(pid) == os.getpid()):
            dead.append(who or "")  # gone, or an earlier process that had our pid
    return dead


def reap(session: Session, edition_id: int) -> tuple[int, int]:
    """Expired (or dead-owner) claims: ``claimed`` → pending, ``sending`` → unknown.

    Returns (returned to pending, became unknown).
    """
    now = utcnow()
    lost = or_(
        Delivery.lease_expires_at < db_time(),
        Delivery.claimed_by.in_(dead_owners(session, edition_id)),
    )
    back = rows_updated(
        session,
        update(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.state == DeliveryState.CLAIMED, lost)
        .values(
            state=DeliveryState.PENDING, claim_token=None, claimed_by=None, lease_expires_at=None
        ),
    )
    unknown = rows_updated(
        session,
        update(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.state == DeliveryState.SENDING, lost)
        .values(
            state=DeliveryState.UNKNOWN,
            claim_token=None,
            lease_expires_at=None,
            last_error="sender stopped while the message was in flight (lease lost)",
            updated_at=now,
        ),
    )
    return back, unknown


def due(now: datetime) -> Any:
    """Rows whose local delivery time has come (or that have none)."""
    return or_(Delivery.not_before.is_(None), Delivery.not_before <= now)


def waiting(edition_id: int, now: datetime, states: Sequence[DeliveryState] = ()) -> Any:
    """The edition's rows a send takes now: pending (or ``states``) and due.

    Claims pick from these; ``digest.delivery.audience`` (the dry run) lists
    the same rows, less those whose subscriber left (a claim skips them).
    """
    return and_(
        Delivery.edition_id == edition_id,
        Delivery.state.in_(list(states) or [DeliveryState.PENDING]),
        due(now),
    )


def claim(session: Session, edition_id: int, limit: int, lease: float) -> Claim:
    """Claim up to ``limit`` pending rows; subscribers no longer active are skipped."""
    token = secrets.token_hex(16)
    now = utcnow()
    pick = select(Delivery.id).where(waiting(edition_id, now)).order_by(Delivery.id).limit(limit)
    ids: Any
    if session.get_bind().dialect.name == "postgresql":
        # Lock first, then update: inside ``IN (…)`` PostgreSQL may re-run a
        # LIMITed SKIP LOCKED subquery and claim more rows than asked for.
        ids = list(session.scalars(pick.with_for_update(skip_locked=True)))
        if not ids:
            return Claim(token, [])
    else:
        # One statement: it takes SQLite's single write lock before reading.
        ids = pick.scalar_subquery()
    got = rows_updated(
        session,
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.state == DeliveryState.PENDING)
        .values(
            state=DeliveryState.CLAIMED,
            claim_token=token,
            claimed_by=owner(),
            lease_expires_at=db_time(lease),
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
    )
    if not got:
        return Claim(token, [])
    found = session.execute(
        select(
            Delivery.id,
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.token_version,
            Subscriber.status,
            Delivery.variant_id,
            Subscriber.topics,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.claim_token == token)
        .order_by(Delivery.id)
    ).all()
    gone = [d for d, _, _, _, _, status, _, _ in found if status != SubscriberStatus.ACTIVE]
    if gone:
        _skip(session, token, gone, "subscriber no longer active")
    rows = [
        Row(d, sid, email, name, version, wire_address(email), variant, tuple(topics or ()))
        for d, sid, email, name, version, status, variant, topics in found
        if status == SubscriberStatus.ACTIVE
    ]
    return Claim(token, rows)


def _ids(ids: Sequence[int]) -> Any:
    """An id list as one expanding parameter: no per-value coercion, one cached statement."""
    return bindparam(None, list(ids), type_=Integer, expanding=True)


def renew(session: Session, tokens: Sequence[str], lease: float) -> int:
    """Extend the lease of every row these claims still hold."""
    if not tokens:
        return 0
    return rows_updated(
        session,
        update(Delivery)
        .where(
            Delivery.claim_token.in_(list(tokens)),
            Delivery.state.in_(HELD),
        )
        .values(lease_expires_at=db_time(lease))
        .execution_options(synchronize_session=False),
    )


def _skip(session: Session, token: str, ids: Sequence[int], error: str) -> int:
    """Claimed rows whose subscriber left: ``skipped``, never mailed."""
    return rows_updated(
        session,
        update(Delivery)
        .where(
            Delivery.id.in_(_ids(ids)),
            Delivery.claim_token == token,
            Delivery.state == DeliveryState.CLAIMED,
        )
        .values(
            state=DeliveryState.SKIPPED,
            claim_token=None,
            lease_expires_at=None,
            last_error=error,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False),
    )


# -- per-message writes: the ledger writer's hot path ------------------------
#
# A send writes two of these per message (the previous outcome, the next row
# `sending`), so they skip SQLAlchemy's statement machinery: plain SQL on the
# DBAPI cursor of the connection (inside its transaction), the same on SQLite
# and PostgreSQL but for the database clock and the parameter style. These are
# the only writes that move a claimed row on; tests/test_ledger.py checks
# each row they leave, column by column.

_S = DeliveryState
_HELD_SQL = "(" + ", ".join(f"'{state.value}'" for state in HELD) + ")"
_MARK_SQL = (
    f"UPDATE deliveries SET state = '{_S.SENDING.value}',"
    f" attempts = attempts + CASE WHEN state = '{_S.CLAIMED.value}' THEN 1 ELSE 0 END,"
    " lease_expires_at = {lease}, updated_at = :now"
    f" WHERE id = :d AND claim_token = :tok AND state IN {_HELD_SQL}"
)
_LEASE_SQL = {
    "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now', :lease)",
    "postgresql": "(statement_timestamp() + make_interval(secs => :lease))",
}
_CLEAR = "claim_token = NULL, lease_expires_at = NULL, updated_at = :now, last_error = :error"
_OUTCOME_SQL = {
    _S.SENT: f"UPDATE deliveries SET state = '{_S.SENT.value}', sent_at = :now, {_CLEAR}"
    f" WHERE id = :d AND claim_token = :tok AND state = '{_S.SENDING.value}'",
    _S.UNKNOWN: f"UPDATE deliveries SET state = '{_S.UNKNOWN.value}', {_CLEAR}"
    f" WHERE id = :d AND claim_token = :tok AND state = '{_S.SENDING.value}'",
    _S.FAILED: f"UPDATE deliveries SET state = '{_S.FAILED.value}', reply_code = :code, {_CLEAR}"
    f" WHERE id = :d AND claim_token = :tok AND state IN {_HELD_SQL}",
    _S.PENDING: f"UPDATE deliveries SET state = '{_S.PENDING.value}', claimed_by = NULL, {_CLEAR}"
    f" WHERE id = :d AND claim_token = :tok AND state IN {_HELD_SQL}",
}
_NAMED = re.compile(r"(?<![:\w]):(\w+)")


@functools.lru_cache(maxsize=32)
def _sql(template: str, dialect: str) -> str:
    """``template`` for this dialect: the lease clock filled in, ``:name`` parameters as the
    driver wants them (sqlite3 takes them as they are, psycopg as ``%(name)s``)."""
    text_ = template.replace("{lease}", _LEASE_SQL[dialect])
    return text_ if dialect == "sqlite" else _NAMED.sub(r"%(\1)s", text_)


def _run(conn: Connection, template: str, params: dict[str, Any]) -> int:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        # Stored as SQLAlchemy stores SQLite datetimes (naive UTC text), so they compare.
        params["now"] = params["now"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    cursor = conn.connection.cursor()
    try:
        cursor.execute(_sql(template, dialect), params)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def mark_one(conn: Connection, token: str, delivery_id: int, lease: float) -> bool:
    """claimed → sending for one row (committed before its data goes out), if this claim
    still holds it. A row already ``sending`` under this token counts as held: that
    is a retried write whose first commit did reach the database."""
    seconds = float(lease)
    params: dict[str, Any] = {"d": delivery_id, "tok": token, "now": utcnow()}
    params["lease"] = f"{seconds:+.3f} seconds" if conn.dialect.name == "sqlite" else seconds
    return bool(_run(conn, _MARK_SQL, params))


def write_outcome(
    conn: Connection,
    token: str,
    delivery_id: int,
    state: DeliveryState,
    error: str | None = None,
    code: int | None = None,
) -> bool:
    """One message's outcome (``pending`` gives the row back); False if the claim lost it."""
    params: dict[str, Any] = {"d": delivery_id, "tok": token, "now": utcnow(), "error": error}
    if state == DeliveryState.FAILED:
        params["code"] = code
    return bool(_run(conn, _OUTCOME_SQL[state], params))
