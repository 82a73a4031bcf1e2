"""The delivery ledger: row creation, claims with leases, state transitions, edition status.

Every write that moves a claimed row is conditional on its claim token, so a
worker whose lease expired (and whose rows were reaped) cannot overwrite what
another worker or the reaper decided. Claiming is one ``UPDATE … WHERE id IN
(SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``: on PostgreSQL concurrent
claimers skip each other's rows; on SQLite (where SQLAlchemy drops the
locking clause) the single statement holds the database's one write lock, so
claimers are serialised just as with ``BEGIN IMMEDIATE``.

Edition status changes live here too (``start``, ``pause``, ``resume``,
``cancel``, ``retry``, ``settle``): the one place that decides them.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, Integer, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.errors import EditionError, EditionNotFound
from digest.core.models import Delivery, Edition
from digest.core.status import OPEN_DELIVERY_STATES, DeliveryState, EditionStatus
from digest.editions.slots import local_instant
from digest.mail.message import message_id
from subscribers.models import Subscriber, SubscriberStatus

INSERT_BATCH = 5000
HOST = socket.gethostname()[:60]
S = DeliveryState


def owner() -> str:
    """Who claims: ``host:pid`` (lets a restart on the same host reap a dead process's rows)."""
    return f"{HOST}:{os.getpid()}"


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _update(session: Session, stmt: Any) -> int:
    result: CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
    return _rowcount(result)


# -- creating rows and edition status ------------------------------------


def start(
    session: Session,
    edition: Edition,
    domain: str,
    local_slot: datetime | None = None,
    default_zone: str = "UTC",
) -> bool:
    """Move a draft edition to running and create a row per active subscriber, once.

    The conditional UPDATE makes two concurrent starts harmless: only one
    creates rows. With ``local_slot`` (a wall-clock time) each row waits
    until that time in its subscriber's zone (``default_zone`` when unset).
    Returns True when this call started the edition.
    """
    started = _update(
        session,
        update(Edition)
        .where(Edition.id == edition.id, Edition.status == EditionStatus.DRAFT)
        .values(status=EditionStatus.RUNNING, started_at=utcnow()),
    )
    if not started:
        return False
    people = session.execute(
        select(Subscriber.id, Subscriber.timezone)
        .where(Subscriber.status == SubscriberStatus.ACTIVE)
        .order_by(Subscriber.id)
    ).all()
    ids = [sid for sid, _ in people]
    waits: dict[int, datetime] = {}
    if local_slot is not None:
        by_zone: dict[str, datetime] = {}
        for sid, zone in people:
            zone = zone or default_zone
            if zone not in by_zone:
                by_zone[zone] = local_instant(local_slot, zone)
            waits[sid] = by_zone[zone]
    now = utcnow()
    for first in range(0, len(ids), INSERT_BATCH):
        session.execute(
            insert(Delivery),
            [
                {
                    "edition_id": edition.id,
                    "subscriber_id": sid,
                    "state": S.PENDING,
                    "message_id": message_id(edition.id, sid, domain),
                    "attempts": 0,
                    "updated_at": now,
                    "not_before": waits.get(sid),
                }
                for sid in ids[first : first + INSERT_BATCH]
            ],
        )
    return True


def _move_edition(
    session: Session, edition_id: int, from_: Iterable[EditionStatus], to: EditionStatus
) -> bool:
    values: dict[str, Any] = {"status": to}
    if to in (EditionStatus.FINISHED, EditionStatus.CANCELLED):
        values["finished_at"] = utcnow()
    if to == EditionStatus.RUNNING:
        values["finished_at"] = None
    return bool(
        _update(
            session,
            update(Edition)
            .where(Edition.id == edition_id, Edition.status.in_(list(from_)))
            .values(**values),
        )
    )


def _status(session: Session, edition_id: int) -> EditionStatus:
    status = session.scalar(select(Edition.status).where(Edition.id == edition_id))
    if status is None:
        raise EditionNotFound(f"no edition {edition_id}", edition_id)
    return EditionStatus(status)


def pause(session: Session, edition_id: int) -> None:
    """Running → paused; senders stop at their next batch and release unsent rows."""
    if not _move_edition(session, edition_id, [EditionStatus.RUNNING], EditionStatus.PAUSED):
        status = _status(session, edition_id)
        raise EditionError(f"edition {edition_id} is {status}, not running", edition_id)


def resume(session: Session, edition_id: int) -> None:
    """Paused → running (run `digest send ID` or a worker to carry on)."""
    if not _move_edition(session, edition_id, [EditionStatus.PAUSED], EditionStatus.RUNNING):
        status = _status(session, edition_id)
        raise EditionError(f"edition {edition_id} is {status}, not paused", edition_id)


def cancel(session: Session, edition_id: int) -> int:
    """Stop an edition for good; rows not yet sending become skipped. Returns how many."""
    live = [EditionStatus.DRAFT, EditionStatus.SCHEDULED, EditionStatus.RUNNING]
    if not _move_edition(
        session, edition_id, [*live, EditionStatus.PAUSED], EditionStatus.CANCELLED
    ):
        status = _status(session, edition_id)
        raise EditionError(f"edition {edition_id} is already {status}", edition_id)
    return _skip_pending(session, edition_id, "edition cancelled")


def _skip_pending(session: Session, edition_id: int, why: str) -> int:
    return _update(
        session,
        update(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.state == S.PENDING)
        .values(state=S.SKIPPED, last_error=why, updated_at=utcnow()),
    )


def retry(session: Session, edition_id: int, state: DeliveryState) -> int:
    """Put the edition's ``failed`` or ``unknown`` rows back to pending, on purpose.

    The Message-ID stays the same, so a receiving system can recognise a resend.
    """
    if state not in (S.FAILED, S.UNKNOWN):
        raise EditionError(f"can only retry failed or unknown deliveries, not {state}", edition_id)
    status = _status(session, edition_id)
    if status in (EditionStatus.CANCELLED, EditionStatus.DRAFT):
        raise EditionError(f"edition {edition_id} is {status}", edition_id)
    n = _update(
        session,
        update(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.state == state)
        .values(state=S.PENDING, claim_token=None, claimed_by=None, updated_at=utcnow()),
    )
    if n:
        _move_edition(session, edition_id, [EditionStatus.FINISHED], EditionStatus.RUNNING)
    return n


def settle(session: Session, edition_id: int) -> EditionStatus:
    """Decide the edition's status from its rows: the one place that finishes an edition.

    Running with no open row → finished. Cancelled → leftover pending rows skipped.
    """
    status = _status(session, edition_id)
    if status == EditionStatus.CANCELLED:
        _skip_pending(session, edition_id, "edition cancelled")
        return status
    if status != EditionStatus.RUNNING:
        return status
    open_rows = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.state.in_(OPEN_DELIVERY_STATES))
    )
    if open_rows:
        return status
    if _move_edition(session, edition_id, [EditionStatus.RUNNING], EditionStatus.FINISHED):
        return EditionStatus.FINISHED
    return _status(session, edition_id)


def counts(session: Session, edition_id: int) -> dict[DeliveryState, int]:
    rows = session.execute(
        select(Delivery.state, func.count())
        .where(Delivery.edition_id == edition_id)
        .group_by(Delivery.state)
    )
    return {DeliveryState(state): n for state, n in rows}


# -- claims and leases ----------------------------------------------------


@dataclass(frozen=True)
class Row:
    delivery_id: int
    subscriber_id: int
    email: str
    name: str


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
            Delivery.state.in_([S.CLAIMED, S.SENDING]),
            Delivery.claimed_by.like(f"{HOST}:%"),
        )
        .distinct()
    ).all()
    dead = []
    for who in owners:
        pid = (who or "").rsplit(":", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            dead.append(who or "")
    return dead


def reap(session: Session, edition_id: int) -> tuple[int, int]:
    """Expired (or dead-owner) claims: ``claimed`` → pending, ``sending`` → unknown.

    Returns (returned to pending, became unknown).
    """
    now = utcnow()
    lost = or_(
        Delivery.lease_expires_at < now, Delivery.claimed_by.in_(dead_owners(session, edition_id))
    )
    back = _update(
        session,
        update(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.state == S.CLAIMED, lost)
        .values(state=S.PENDING, claim_token=None, claimed_by=None, lease_expires_at=None),
    )
    unknown = _update(
        session,
        update(Delivery)
        .where(Delivery.edition_id == edition_id, Delivery.state == S.SENDING, lost)
        .values(
            state=S.UNKNOWN,
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


def claim(session: Session, edition_id: int, limit: int, lease: float) -> Claim:
    """Claim up to ``limit`` pending rows; subscribers no longer active are skipped."""
    token = secrets.token_hex(16)
    now = utcnow()
    pick = (
        select(Delivery.id)
        .where(Delivery.edition_id == edition_id, Delivery.state == S.PENDING, due(now))
        .order_by(Delivery.id)
        .limit(limit)
    )
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
    got = _update(
        session,
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.state == S.PENDING)
        .values(
            state=S.CLAIMED,
            claim_token=token,
            claimed_by=owner(),
            lease_expires_at=now + timedelta(seconds=lease),
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
    )
    if not got:
        return Claim(token, [])
    found = session.execute(
        select(Delivery.id, Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.status)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.claim_token == token)
        .order_by(Delivery.id)
    ).all()
    gone = [d for d, _, _, _, status in found if status != SubscriberStatus.ACTIVE]
    if gone:
        _finish(session, token, gone, S.SKIPPED, error="subscriber no longer active")
    rows = [
        Row(d, sid, email, name)
        for d, sid, email, name, status in found
        if status == SubscriberStatus.ACTIVE
    ]
    return Claim(token, rows)


def _ids(ids: Sequence[int]) -> Any:
    """An id list as one expanding parameter: no per-value coercion, one cached statement."""
    return bindparam(None, list(ids), type_=Integer, expanding=True)


def _mine(token: str, ids: Sequence[int], state: DeliveryState) -> Any:
    return and_(Delivery.id.in_(_ids(ids)), Delivery.claim_token == token, Delivery.state == state)


def mark_sending(session: Session, token: str, ids: Sequence[int], lease: float) -> set[int]:
    """claimed → sending for ``ids`` (committed by the caller before MAIL FROM).

    Returns the ids this claim still holds; rows whose lease was lost are left alone.
    """
    now = utcnow()
    stmt = (
        update(Delivery)
        .where(_mine(token, ids, S.CLAIMED))
        .values(
            state=S.SENDING,
            attempts=Delivery.attempts + 1,
            lease_expires_at=now + timedelta(seconds=lease),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if session.get_bind().dialect.update_returning:  # SQLite ≥ 3.35, PostgreSQL
        return set(session.scalars(stmt.returning(Delivery.id)))
    _update(session, stmt)
    held = session.scalars(select(Delivery.id).where(_mine(token, ids, S.SENDING))).all()
    return set(held)


def renew(session: Session, token: str, lease: float) -> int:
    """Extend the lease of every row this claim still holds."""
    return _update(
        session,
        update(Delivery)
        .where(Delivery.claim_token == token, Delivery.state.in_([S.CLAIMED, S.SENDING]))
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease))
        .execution_options(synchronize_session=False),
    )


def _finish(
    session: Session,
    token: str,
    ids: Sequence[int],
    state: DeliveryState,
    *,
    error: str | None = None,
    code: int | None = None,
    from_: DeliveryState | None = None,
) -> int:
    if not ids:
        return 0
    now = utcnow()
    values: dict[str, Any] = {"state": state, "updated_at": now, "last_error": error}
    if state == S.SENT:
        values["sent_at"] = now
    if code is not None:
        values["reply_code"] = code
    values |= {"claim_token": None, "lease_expires_at": None}
    where = (
        _mine(token, ids, from_)
        if from_ is not None
        else and_(
            Delivery.id.in_(_ids(ids)),
            Delivery.claim_token == token,
            Delivery.state.in_([S.CLAIMED, S.SENDING]),
        )
    )
    return _update(
        session,
        update(Delivery).where(where).values(**values).execution_options(synchronize_session=False),
    )


def sent(session: Session, token: str, ids: Sequence[int]) -> int:
    return _finish(session, token, ids, S.SENT, from_=S.SENDING)


def failed(session: Session, token: str, delivery_id: int, error: str, code: int | None) -> int:
    return _finish(session, token, [delivery_id], S.FAILED, error=error, code=code)


def unknown(session: Session, token: str, ids: Sequence[int], error: str) -> int:
    return _finish(session, token, ids, S.UNKNOWN, error=error, from_=S.SENDING)


def release(session: Session, token: str, ids: Sequence[int], error: str | None = None) -> int:
    """Rows provably not sent go back to pending (not yet tried, or refused before acceptance)."""
    now = utcnow()
    return _update(
        session,
        update(Delivery)
        .where(
            Delivery.id.in_(_ids(ids)),
            Delivery.claim_token == token,
            Delivery.state.in_([S.CLAIMED, S.SENDING]),
        )
        .values(
            state=S.PENDING,
            claim_token=None,
            claimed_by=None,
            lease_expires_at=None,
            last_error=error,
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
    )


def mark_bounced(session: Session, subscriber_ids: Iterable[int], limit: int) -> list[int]:
    """Subscribers with ``limit`` or more hard bounces (5xx) become bounced; returns their ids."""
    ids = sorted(set(subscriber_ids))
    if not ids or limit <= 0:
        return []
    over = session.scalars(
        select(Delivery.subscriber_id)
        .where(
            Delivery.subscriber_id.in_(ids),
            Delivery.state == S.FAILED,
            Delivery.reply_code >= 500,
        )
        .group_by(Delivery.subscriber_id)
        .having(func.count() >= limit)
    ).all()
    if over:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id.in_(over), Subscriber.status == SubscriberStatus.ACTIVE)
            .values(status=SubscriberStatus.BOUNCED, status_changed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return list(over)
