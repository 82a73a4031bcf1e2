"""The SMTP path against a real aiosmtpd server on 127.0.0.1 that misbehaves on purpose."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import Cli, running_smtp
from sending_setup import FAST, edition_with
from smtp_faults import FaultPlan
from sqlalchemy import select

from digest.core.errors import DigestError
from digest.delivery.manager import DeliveryOptions
from digest.processes.sink import free_port
from digest.transports.smtp import SmtpTarget, SmtpTransport
from subscribers.models import Subscriber


@dataclass
class Faulty(FaultPlan):
    """An aiosmtpd handler that answers as its fault plan says."""

    mail_421: int = 0

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.mail_421 > 0:
            self.mail_421 -= 1
            return "421 4.3.2 too busy, come back later"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.fire(address, "451"):
            return "451 4.7.1 greylisted, try again"
        if self.fire(address, "550"):
            return "550 5.1.1 no such user here"
        if self.fire(address, "drop-before-data"):
            server.transport.close()
            return "250 OK"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rcpt = envelope.rcpt_tos[0]
        self.data_seen[rcpt] += 1
        if self.fire(rcpt, "drop-after-dot"):
            server.transport.close()
            return "250 OK"
        if self.fire(rcpt, "stall-after-dot"):
            await asyncio.sleep(3)
        self.delivered.append(rcpt)
        return "250 OK queued"


@pytest.fixture
def faulty() -> Iterator[tuple[Faulty, int]]:
    handler = Faulty()
    with running_smtp(handler) as port:
        yield handler, port


def test_smtp_faults_end_in_the_right_state_per_recipient(
    cli: Cli, faulty: tuple[Faulty, int]
) -> None:
    handler, port = faulty
    with edition_with(cli, 12) as ed:
        e = ed.emails
        handler.mail_421 = 2
        handler.faults = {
            e[0]: ("451", 2),
            e[1]: ("550", 1),
            e[2]: ("drop-before-data", 1),
            e[3]: ("drop-after-dot", 1),
            e[4]: ("stall-after-dot", 1),
            e[5]: ("451", 99),
        }
        ed.start()
        transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", port), timeout=1.0)
        options = DeliveryOptions(connections=2, claim_batch=4, backoff=0.01)
        summary = ed.send(transport, options)
        got = ed.outcomes()
        assert got[e[0]][0] == "sent"  # greylisted twice, then accepted
        assert got[e[1]] == ("failed", "550 5.1.1 no such user here", 550)
        assert got[e[2]][0] == "sent"  # dropped before DATA: provably not sent, retried
        assert got[e[3]][0] == "unknown"  # dropped after the final dot: not resent
        assert got[e[4]][0] == "unknown"  # no reply to the final dot in time
        assert got[e[5]][0] == "failed" and got[e[5]][2] == 451  # temporary, attempts exhausted
        assert all(got[x][0] == "sent" for x in e[6:])
        assert (summary.sent, summary.failed, summary.unknown) == (8, 2, 2)
        assert handler.data_seen[e[3]] == 1 and handler.data_seen[e[4]] == 1
        # Exactly one accepted message per recipient, never two.
        assert handler.most_copies() == 1


def test_smtp_hard_bounces_mark_the_subscriber_bounced(
    cli: Cli, faulty: tuple[Faulty, int]
) -> None:
    handler, port = faulty
    with edition_with(cli, 2) as ed:
        handler.faults = {ed.emails[0]: ("550", 1)}
        ed.start()
        transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", port))
        options = DeliveryOptions(connections=1, bounce_limit=1, backoff=0.01)
        summary = ed.send(transport, options)
        assert summary.bounced == 1
        with ed.factory() as s:
            status = s.scalar(select(Subscriber.status).where(Subscriber.email == ed.emails[0]))
        assert status == "bounced"


def test_smtp_connection_is_reused_up_to_the_cap(cli: Cli, faulty: tuple[Faulty, int]) -> None:
    handler, port = faulty
    connects = Counter[str]()

    class Counting(SmtpTransport):
        def _connect(self) -> Any:
            connects["n"] += 1
            return super()._connect()

    with edition_with(cli, 10) as ed:
        ed.start()
        transport = Counting(SmtpTarget("smtp", "127.0.0.1", port), per_connection=4)
        ed.send(transport, DeliveryOptions(connections=1))
    assert len(handler.delivered) == 10
    assert connects["n"] == 3


def test_smtp_refused_connection_leaves_rows_pending(cli: Cli) -> None:
    with edition_with(cli, 3) as ed:
        ed.start()
        transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", free_port()), timeout=1)
        with pytest.raises(Exception, match="cannot connect"):
            ed.send(transport, FAST)
        assert {s for s, _, _ in ed.outcomes().values()} == {"pending"}
        assert ed.status() == "running"


class RefusesAtGreeting:
    """A server on 127.0.0.1 that greets every connection with 421 and hangs up."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(b"421 4.3.2 service not available, closing\r\n")

    def close(self) -> None:
        self.sock.close()


def test_smtp_421_at_connect_leaves_every_row_pending(cli: Cli) -> None:
    server = RefusesAtGreeting()
    try:
        with edition_with(cli, 3) as ed:
            ed.start()
            transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", server.port), timeout=2.0)
            options = DeliveryOptions(connections=1, backoff=0.01, max_attempts=2)
            with pytest.raises(DigestError) as caught:
                ed.send(transport, options)
            assert f"127.0.0.1:{server.port}" in str(caught.value)
            assert "421" in str(caught.value)
            # Not the recipients' fault: nobody is marked failed, all wait for a retry.
            assert {state for state, _, _ in ed.outcomes().values()} == {"pending"}
            assert server.connections >= 1
    finally:
        server.close()


@dataclass
class Slow:
    """Accepts everything, but takes its time over each reply to DATA."""

    delay: float
    delivered: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        self.delivered.extend(envelope.rcpt_tos)
        return "250 OK queued"


def test_smtp_slow_replies_still_deliver_each_message_once(cli: Cli) -> None:
    handler = Slow(delay=0.2)
    with running_smtp(handler) as port, edition_with(cli, 6) as ed:
        ed.start()
        transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", port), timeout=5.0)
        summary = ed.send(transport, DeliveryOptions(connections=2, backoff=0.01))
        assert summary.sent == 6
        assert sorted(handler.delivered) == sorted(ed.emails)
        assert {state for state, _, _ in ed.outcomes().values()} == {"sent"}
