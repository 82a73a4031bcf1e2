"""The subscriber lifecycle: every transition, allowed or not; the 0004 migration keeps data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import select, text

from digest.core.db import alembic_config, make_engine, session_factory, upgrade
from subscribers.lifecycle import TransitionError, transition
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus

P, A, U, B, C, PA = (
    SubscriberStatus.PENDING,
    SubscriberStatus.ACTIVE,
    SubscriberStatus.UNSUBSCRIBED,
    SubscriberStatus.BOUNCED,
    SubscriberStatus.COMPLAINED,
    SubscriberStatus.PAUSED,
)
# Written out by hand (not derived from lifecycle.ALLOWED), so the test checks the table.
ALLOWED = {
    (P, A),
    (P, U),
    (P, B),
    (P, C),
    (A, U),
    (A, B),
    (A, C),
    (A, PA),
    (PA, A),
    (PA, U),
    (PA, B),
    (PA, C),
    (U, P),
    (B, P),
}
STAMP = {
    A: "confirmed_at",
    U: "unsubscribed_at",
    B: "bounced_at",
    C: "complained_at",
    PA: "paused_at",
}
EARLIER = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def person(status: SubscriberStatus) -> Subscriber:
    return Subscriber(
        email="a@example.com",
        email_key="a@example.com",
        status=status,
        created_at=EARLIER,
        status_changed_at=EARLIER,
    )


@pytest.mark.parametrize("current", list(SubscriberStatus))
@pytest.mark.parametrize("wanted", list(SubscriberStatus))
def test_lifecycle_transition_table(current: SubscriberStatus, wanted: SubscriberStatus) -> None:
    sub = person(current)
    if current == wanted:
        assert transition(sub, wanted, NOW) is False
        assert sub.status_changed_at == EARLIER
    elif (current, wanted) in ALLOWED:
        assert transition(sub, wanted, NOW) is True
        assert sub.status == wanted and sub.status_changed_at == NOW
        if (current, wanted) == (PA, A):
            assert sub.confirmed_at is None  # resuming keeps the first confirmation time
        elif wanted in STAMP:
            assert getattr(sub, STAMP[wanted]) == NOW
    else:
        with pytest.raises(TransitionError, match=f"cannot go from {current} to {wanted}"):
            transition(sub, wanted, NOW)
        assert sub.status == current and sub.status_changed_at == EARLIER


def test_migration_0004_keeps_subscribers_and_backfills_timestamps(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0001")
        created = datetime(2026, 3, 1, 8, 0)
        changed = datetime(2026, 4, 1, 9, 30)
        with engine.begin() as conn:
            for i, status in enumerate(["active", "unsubscribed", "pending", "bounced"]):
                conn.execute(
                    text(
                        "INSERT INTO subscribers (email, email_key, name, status, source,"
                        " created_at, status_changed_at) VALUES (:e, :e, :n, :s, 'csv', :c, :ch)"
                    ),
                    {
                        "e": f"p{i}@example.com",
                        "n": f"P{i}",
                        "s": status,
                        "c": created,
                        "ch": changed,
                    },
                )
        upgrade(engine)
        with session_factory(engine)() as s:
            subs = {sub.email: sub for sub in s.scalars(select(Subscriber))}
    finally:
        engine.dispose()
    assert [(e, subs[e].name, subs[e].status) for e in sorted(subs)] == [
        ("p0@example.com", "P0", "active"),
        ("p1@example.com", "P1", "unsubscribed"),
        ("p2@example.com", "P2", "pending"),
        ("p3@example.com", "P3", "bounced"),
    ]
    assert subs["p0@example.com"].confirmed_at == created.replace(tzinfo=UTC)
    assert subs["p1@example.com"].unsubscribed_at == changed.replace(tzinfo=UTC)
    assert subs["p3@example.com"].bounced_at == changed.replace(tzinfo=UTC)
    assert subs["p2@example.com"].confirmed_at is None
    assert all(sub.attributes == {} and sub.timezone is None for sub in subs.values())
