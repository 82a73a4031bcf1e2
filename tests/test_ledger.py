"""The delivery ledger: claims, leases, concurrent senders, pause/resume/cancel, retries."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta

from conftest import Cli
from sending_setup import edition_with
from sqlalchemy import select, text, update

from digest.core.db import alembic_config, make_engine, transaction, utcnow
from digest.core.models import Delivery
from digest.core.status import DeliveryState
from digest.delivery import bounces, claims, lifecycle
from digest.transports.base import MemoryTransport, Unknown
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus


def recipients(transport: MemoryTransport) -> Counter[str]:
    return Counter(rcpt for _, rcpt, _ in transport.sent)


def test_ledger_two_concurrent_senders_deliver_exactly_one_message_each(cli: Cli) -> None:
    with edition_with(cli, 300) as ed:
        ed.start()
        transport = MemoryTransport()
        results = []
        threads = [
            threading.Thread(target=lambda: results.append(ed.send(transport))) for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert recipients(transport) == Counter(ed.emails)
        assert sum(r.sent for r in results) == 300
        assert set(ed.states().values()) == {"sent"}
        assert ed.status() == "finished"


def test_ledger_expired_claims_go_back_and_expired_sends_become_unknown(cli: Cli) -> None:
    with edition_with(cli, 4) as ed:
        ed.start()
        with transaction(ed.factory) as s:
            first = claims.claim(s, ed.id, 2, lease=60)
        with transaction(ed.factory) as s:
            claims.mark_one(s.connection(), first.token, first.rows[0].delivery_id, lease=60)
            s.execute(update(Delivery).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        with transaction(ed.factory) as s:
            assert claims.reap(s, ed.id) == (1, 1)
        states = Counter(ed.states().values())
        assert states == Counter({"pending": 3, "unknown": 1})
        # The worker that lost its lease cannot record an outcome any more.
        with transaction(ed.factory) as s:
            conn = s.connection()
            sent, pending = DeliveryState.SENT, DeliveryState.PENDING
            assert not claims.write_outcome(conn, first.token, first.rows[0].delivery_id, sent)
            assert not claims.write_outcome(conn, first.token, first.rows[1].delivery_id, pending)
        assert Counter(ed.states().values()) == states


def test_ledger_rows_held_by_a_dead_process_are_reaped_at_once(cli: Cli) -> None:
    with edition_with(cli, 3) as ed:
        ed.start()
        with transaction(ed.factory) as s:
            got = claims.claim(s, ed.id, 2, lease=3600)
            claims.mark_one(s.connection(), got.token, got.rows[0].delivery_id, lease=3600)
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        with transaction(ed.factory) as s:
            s.execute(update(Delivery).values(claimed_by=f"{claims.HOST}:{dead}"))
        summary = ed.send(MemoryTransport())
        assert summary.recovered_unknown == 1
        assert summary.sent == 2
        assert Counter(ed.states().values()) == Counter({"sent": 2, "unknown": 1})


def test_ledger_subscriber_who_left_before_their_turn_is_skipped(cli: Cli) -> None:
    with edition_with(cli, 3) as ed:
        ed.start()
        with transaction(ed.factory) as s:
            s.execute(
                update(Subscriber)
                .where(Subscriber.email == ed.emails[1])
                .values(status=SubscriberStatus.UNSUBSCRIBED)
            )
        transport = MemoryTransport()
        ed.send(transport)
        assert recipients(transport) == Counter([ed.emails[0], ed.emails[2]])
        assert ed.states()[ed.emails[1]] == "skipped"
        assert ed.status() == "finished"


def test_hard_bounces_go_through_the_subscriber_lifecycle(cli: Cli) -> None:
    with edition_with(cli, 3) as ed:
        ed.start()
        with transaction(ed.factory) as s:
            ids = {e: i for e, i in s.execute(select(Subscriber.email, Subscriber.id))}
            s.execute(update(Delivery).values(state=DeliveryState.FAILED, reply_code=550))
            s.execute(
                update(Subscriber)
                .where(Subscriber.email == ed.emails[2])
                .values(status=SubscriberStatus.PAUSED)
            )
        with transaction(ed.factory) as s:
            over = bounces.mark_bounced(s, [ids[ed.emails[0]], ids[ed.emails[2]]], limit=1)
        assert sorted(over) == sorted([ids[ed.emails[0]], ids[ed.emails[2]]])
        with ed.factory() as s:
            people = {p.email: p for p in s.scalars(select(Subscriber))}
        assert people[ed.emails[0]].status == SubscriberStatus.BOUNCED
        assert people[ed.emails[0]].bounced_at is not None  # stamped by the lifecycle
        assert people[ed.emails[1]].status == SubscriberStatus.ACTIVE  # not asked about
        assert people[ed.emails[2]].status == SubscriberStatus.PAUSED  # only active ones bounce


class GatedTransport(MemoryTransport):
    """Accepts messages, but holds the sender after ``after`` of them until released."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.reached = threading.Event()
        self.go = threading.Event()
        self._lock = threading.Lock()

    def send(self, sender: str, recipient: str, message: bytes, *, then: object = None) -> None:
        with self._lock:
            super().send(sender, recipient, message)
            n = len(self.sent)
        if n >= self.after:
            self.reached.set()
            assert self.go.wait(60)


def test_send_pause_then_resume_from_another_terminal_sends_each_once(cli: Cli) -> None:
    with edition_with(cli, 200) as ed:
        ed.start()
        transport = GatedTransport(after=10)
        worker = threading.Thread(target=lambda: ed.send(transport))
        worker.start()
        assert transport.reached.wait(60)
        assert "paused" in cli("pause", "1").output
        transport.go.set()
        worker.join(60)
        assert not worker.is_alive()
        assert ed.status() == "paused"
        states = Counter(ed.states().values())
        assert states["pending"] > 0 and states["claimed"] == states["sending"] == 0
        assert "running again" in cli("resume", "1").output
        rest = MemoryTransport()
        ed.send(rest)
        assert recipients(transport) + recipients(rest) == Counter(ed.emails)
        assert ed.status() == "finished"


def test_send_cancel_during_a_send_skips_the_rest(cli: Cli) -> None:
    with edition_with(cli, 200) as ed:
        ed.start()
        transport = GatedTransport(after=10)
        worker = threading.Thread(target=lambda: ed.send(transport))
        worker.start()
        assert transport.reached.wait(60)
        assert "cancelled" in cli("cancel", "1").output
        transport.go.set()
        worker.join(60)
        states = Counter(ed.states().values())
        assert ed.status() == "cancelled"
        assert states["sent"] == len(transport.sent)
        assert states["sent"] + states["skipped"] == 200
        assert "is cancelled" in cli("send", "1", ok=False).output


class FlakyAfterDot(MemoryTransport):
    """The connection drops after the final dot for one address: outcome unknown."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim

    def send(self, sender: str, recipient: str, message: bytes, *, then: object = None) -> None:
        super().send(sender, recipient, message)
        if recipient == self.victim:
            raise Unknown("connection lost after the final dot")


def test_send_retry_unknown_resends_with_the_same_message_id(cli: Cli) -> None:
    with edition_with(cli, 5) as ed:
        ed.start()
        transport = FlakyAfterDot(ed.emails[2])
        summary = ed.send(transport)
        assert (summary.sent, summary.unknown) == (4, 1)
        assert ed.status() == "finished"
        resumed = cli("send", "1", ok=False)  # unknown is not resent by accident, nor hidden
        assert resumed.exit_code == 1 and "nothing new" in resumed.output
        assert "1 deliveries of unknown outcome" in resumed.output
        assert "`digest send 1 --retry unknown`" in resumed.output
        with transaction(ed.factory) as s:
            assert lifecycle.retry(s, ed.id, DeliveryState.UNKNOWN) == 1
        again = MemoryTransport()
        ed.send(again)
        assert recipients(again) == Counter([ed.emails[2]])
        first = next(m for _, r, m in transport.sent if r == ed.emails[2])
        second = again.sent[0][2]
        mid = [line for line in first.split(b"\r\n") if line.startswith(b"Message-ID:")]
        assert mid and mid[0] in second.split(b"\r\n")
        assert set(ed.states().values()) == {"sent"}


def test_send_cli_retry_failed_after_a_fix(cli: Cli, smtp_server) -> None:  # type: ignore[no-untyped-def]
    captured, _ = smtp_server
    with edition_with(cli, 3) as ed:
        captured.reject[ed.emails[0]] = "550 5.1.1 no such user"
        result = cli("send", "1", ok=False)
        assert "sent 2, failed 1" in result.output
        status = cli("status", "1").output
        assert "550 5.1.1 no such user" in status and ed.emails[0] in status
        del captured.reject[ed.emails[0]]
        assert "sent 1, failed 0" in cli("send", "1", "--retry", "failed").output
        assert sorted(r for _, rs, _ in captured.envelopes for r in rs) == sorted(ed.emails)


def test_migration_0003_keeps_existing_deliveries(database_url: str) -> None:
    from alembic import command

    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0001")
        now = utcnow()
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO editions (id, status, created_at) VALUES (1, 'finished', :t)"),
                {"t": now},
            )
            conn.execute(
                text(
                    "INSERT INTO subscribers (id, email, email_key, name, status, source,"
                    " created_at, status_changed_at) VALUES (1, 'a@example.com', 'a@example.com',"
                    " '', 'active', 'cli', :t, :t)"
                ),
                {"t": now},
            )
            conn.execute(
                text(
                    "INSERT INTO deliveries (edition_id, subscriber_id, state, message_id,"
                    " attempts, updated_at) VALUES (1, 1, 'sent', '<m@x>', 1, :t)"
                ),
                {"t": now},
            )
        command.upgrade(alembic_config(engine), "0003_ledger")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT state, message_id, claim_token FROM deliveries")).all()
        assert [tuple(r) for r in rows] == [("sent", "<m@x>", None)]
    finally:
        engine.dispose()


def test_per_message_writes_leave_each_row_as_its_outcome_says(cli: Cli) -> None:
    """The sending hot path's plain SQL, column by column, on SQLite and PostgreSQL."""
    with edition_with(cli, 10) as ed:
        ed.start()
        engine = ed.factory.kw["bind"]
        with transaction(ed.factory) as s:
            got = claims.claim(s, ed.id, 10, lease=60)
        owner = claims.owner()

        def row(d: int) -> dict[str, object]:
            with ed.factory() as s:
                r = s.get(Delivery, d)
                assert r is not None
                return {
                    "state": str(r.state),
                    "attempts": r.attempts,
                    "claim_token": r.claim_token,
                    "claimed_by": r.claimed_by,
                    "last_error": r.last_error,
                    "reply_code": r.reply_code,
                    "lease": r.lease_expires_at is not None,
                    "sent_at": r.sent_at is not None,
                }

        outcomes = [
            (DeliveryState.SENT, None, None),
            (DeliveryState.UNKNOWN, "no reply after the final dot", None),
            (DeliveryState.FAILED, "550 no such user", 550),
            (DeliveryState.PENDING, "421 busy", None),
        ]
        for r, (state, error, code) in zip(got.rows, outcomes, strict=False):
            d = r.delivery_id
            with engine.begin() as conn:
                assert claims.mark_one(conn, got.token, d, lease=60)
                # Marked again after an unanswered commit: still held, counted once.
                assert claims.mark_one(conn, got.token, d, lease=60)
            assert row(d) == {
                "state": "sending",
                "attempts": 1,
                "claim_token": got.token,
                "claimed_by": owner,
                "last_error": None,
                "reply_code": None,
                "lease": True,
                "sent_at": False,
            }
            with engine.begin() as conn:
                assert claims.write_outcome(conn, got.token, d, state, error, code)
                # Written once: the claim no longer holds the row.
                assert not claims.write_outcome(conn, got.token, d, state, error, code)
            assert row(d) == {
                "state": state.value,
                "attempts": 1,
                "claim_token": None,
                "claimed_by": None if state == DeliveryState.PENDING else owner,
                "last_error": error,
                "reply_code": code,
                "lease": False,
                "sent_at": state == DeliveryState.SENT,
            }, state
        with engine.begin() as conn:  # a lease from the database clock, in the future
            d = got.rows[-1].delivery_id
            assert claims.mark_one(conn, got.token, d, lease=30)
            expires = conn.execute(
                select(Delivery.lease_expires_at).where(Delivery.id == d)
            ).scalar_one()
        assert timedelta(seconds=20) < expires - utcnow() < timedelta(seconds=40)
