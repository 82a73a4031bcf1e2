"""The operator's view of a send: counts per state, rate, ETA and the last errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.models import BounceEvent, Delivery, Edition, EditionVariant
from digest.core.status import OPEN_DELIVERY_STATES, DeliveryState, EditionStatus
from digest.delivery import hourly, lifecycle, workers
from subscribers.models import Subscriber

RATE_WINDOW = timedelta(seconds=60)


def status_report(
    session: Session, edition: Edition, errors: int = 5, hourly_limit: int = 0
) -> dict[str, Any]:
    """A JSON-ready report on one edition's deliveries.

    ``waiting`` says why a running send with pending rows is held back (the
    hourly cap, ``hourly_limit``, which a worker would wait for too; else no
    worker alive to send it), or is None; ``waiting_for_worker`` is True in
    the second case. ``check_forced``: the send was started with --force over
    ``check_problems``.
    """
    counts = lifecycle.counts(session, edition.id)
    now = utcnow()
    since = max(edition.started_at or now, now - RATE_WINDOW)
    recent = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.edition_id == edition.id, Delivery.sent_at >= since)
    )
    seconds = (now - since).total_seconds()
    rate = (recent or 0) / seconds if seconds > 0 else 0.0
    open_rows = sum(counts.get(state, 0) for state in OPEN_DELIVERY_STATES)
    running = edition.status == EditionStatus.RUNNING
    eta = open_rows / rate if running and rate > 0 and open_rows else None
    pending = counts.get(DeliveryState.PENDING, 0)
    # The hourly cap comes first: while it holds, a worker would not send either.
    capped = hourly.waiting_reason(session, hourly_limit, now) if running and pending else None
    no_worker = (
        running and bool(pending) and not workers.someone_sending(session, edition.id)
    ) and capped is None
    waiting = capped or (workers.WAITING_FOR_WORKER if no_worker else None)
    last = session.execute(
        select(Subscriber.email, Delivery.state, Delivery.last_error)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(
            Delivery.edition_id == edition.id,
            Delivery.state.in_([DeliveryState.FAILED, DeliveryState.UNKNOWN]),
        )
        .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
        .limit(errors)
    ).all()
    return {
        "id": edition.id,
        "status": edition.status.value,
        "started_at": edition.started_at.isoformat() if edition.started_at else None,
        "finished_at": edition.finished_at.isoformat() if edition.finished_at else None,
        "deliveries": {state.value: counts.get(state, 0) for state in DeliveryState},
        "rate": round(rate, 1) if running else 0.0,
        "eta_seconds": round(eta, 1) if eta is not None else None,
        "waiting": waiting,
        "waiting_for_worker": no_worker,
        "skipped_nothing_new": edition.skipped_nothing_new or 0,
        "skipped_not_due": edition.skipped_not_due or 0,
        "variants": variant_count(session, edition.id),
        "returned": returned_counts(session, [edition.id]).get(edition.id, empty_returned()),
        "check_forced": edition.check_forced,
        "check_problems": list(edition.check_problems or []),
        "last_errors": [
            {"email": email, "state": DeliveryState(state).value, "error": error or ""}
            for email, state, error in last
        ],
    }


def empty_returned() -> dict[str, int]:
    return {"bounces": 0, "complaints": 0}


def returned_counts(
    session: Session, edition_ids: list[int] | None = None
) -> dict[int, dict[str, int]]:
    """Per edition: its deliveries that bounced (hard or soft) and that drew a complaint,
    as named by verified returned mail (each delivery counted once per figure).
    ``edition_ids`` None: every edition that has any; editions with none are left out."""
    figure = case(
        (BounceEvent.kind.in_(["hard", "soft"]), "bounces"),
        (BounceEvent.kind == "complaint", "complaints"),
    )
    query = (
        select(Delivery.edition_id, figure, func.count(func.distinct(BounceEvent.delivery_id)))
        .join(Delivery, Delivery.id == BounceEvent.delivery_id)
        .where(BounceEvent.verified.is_(True), figure.is_not(None))
        .group_by(Delivery.edition_id, figure)
    )
    if edition_ids is not None:
        query = query.where(Delivery.edition_id.in_(edition_ids))
    found: dict[int, dict[str, int]] = {}
    for edition_id, name, n in session.execute(query):
        found.setdefault(edition_id, empty_returned())[name] = n
    return found


def returned_line(report: dict[str, Any]) -> str | None:
    """The one line counting an edition's bounces and complaints, or None."""
    returned = report.get("returned") or {}
    if not (returned.get("bounces") or returned.get("complaints")):
        return None
    return f"returned: {returned['bounces']} bounced, {returned['complaints']} complaints"


def variant_count(session: Session, edition_id: int) -> int:
    """How many story subsets (variants) the edition's deliveries are built from."""
    query = select(func.count()).where(EditionVariant.edition_id == edition_id)
    return session.scalar(query) or 0


def skipped_line(report: dict[str, Any]) -> str | None:
    """The one line counting the subscribers an edition gave no digest, or None."""
    empty, not_due = report.get("skipped_nothing_new", 0), report.get("skipped_not_due", 0)
    if not (empty or not_due):
        return None
    return f"no digest for {empty} subscribers with nothing new, {not_due} weekly readers not due"


def forced_line(report: dict[str, Any]) -> str | None:
    """The one line saying the pre-send check was overridden, or None."""
    if not report.get("check_forced"):
        return None
    problems = report.get("check_problems") or []
    listed = "; ".join(problems[:3]) + ("; …" if len(problems) > 3 else "")
    return f"pre-send check overridden with --force ({len(problems)} problems: {listed})"
