"""The pipelined SMTP path (RFC 2920) against a tiny server that advertises PIPELINING.

aiosmtpd does not advertise PIPELINING, so this server is written here. It
only answers MAIL once RCPT and DATA have arrived too, so a client that does
not pipeline would stall (and fail) rather than pass by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

import pytest
from conftest import Cli
from sending_setup import edition_with
from smtp_faults import FaultPlan
from sqlalchemy import select

from digest.delivery.manager import DeliveryOptions
from digest.mail.return_path import read_verp_tag
from digest.processes.sink import free_port
from digest.transports.base import NotSent, Rejected, Unknown, Unsendable
from digest.transports.envelope import dot_stuffed
from digest.transports.smtp import SmtpTarget, SmtpTransport
from subscribers.models import Subscriber


@dataclass
class PipeServer(FaultPlan):
    """A pipelining SMTP server on ``port`` that answers as its fault plan says.

    With ``lookahead`` it waits that long after a final dot for the next command
    before replying to the dot, and counts in ``announced`` the envelopes that
    had arrived by then: only a client that writes the next envelope behind the
    dot (``then``) gets any counted.
    """

    port: int = 0
    mail_451: int = 0
    mail_421: int = 0
    lookahead: float = 0.0
    bodies: dict[str, bytes] = field(default_factory=dict)
    groups: int = 0  # MAIL + RCPT + DATA groups answered
    announced: int = 0
    connections: int = 0
    order: list[str] = field(default_factory=list)  # recipients accepted, in order
    stray: list[bytes] = field(default_factory=list)  # lines of a DATA the client never ended
    mail_from: dict[str, str] = field(default_factory=dict)  # recipient -> its MAIL FROM

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        ahead: bytes | None = None
        try:
            writer.write(b"220 pipe.test ESMTP\r\n")
            while line := ahead or await reader.readline():
                ahead = None
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-pipe.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb == b"MAIL":
                    ok, ahead = await self.transaction(reader, writer, line)
                    if not ok:
                        return
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    return
                elif verb in (b"RSET", b"NOOP", b"HELO"):
                    writer.write(b"250 OK\r\n")
                else:
                    writer.write(b"500 unknown command\r\n")
                await writer.drain()
        finally:
            writer.close()

    async def transaction(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mail: bytes
    ) -> tuple[bool, bytes | None]:
        """One pipelined group: (False when the connection is to be dropped, a line read ahead)."""
        rcpt = await reader.readline()
        data = await reader.readline()
        assert rcpt.upper().startswith(b"RCPT TO:<") and data.upper() == b"DATA\r\n"
        address = rcpt[9:].split(b">")[0].decode()
        self.mail_from[address] = mail[10:].split(b">")[0].lstrip(b"<").decode()
        self.groups += 1
        if self.mail_421 > 0:
            self.mail_421 -= 1
            writer.write(b"421 4.3.2 too busy, closing\r\n")
            return False, None
        mail_ok = self.mail_451 <= 0
        if not mail_ok:
            self.mail_451 -= 1
        rcpt_ok = mail_ok
        data_anyway = False
        if mail_ok and self.fire(address, "550"):
            rcpt_ok = False
        elif mail_ok and self.fire(address, "550-then-354"):
            rcpt_ok, data_anyway = False, True
        elif mail_ok and self.fire(address, "drop-before-data"):
            return False, None
        writer.write(b"250 OK\r\n" if mail_ok else b"451 4.3.0 try again later\r\n")
        writer.write(b"250 OK\r\n" if rcpt_ok else b"550 5.1.1 no such user here\r\n")
        if not (rcpt_ok or data_anyway):
            writer.write(b"554 5.5.1 no valid recipients\r\n")
            return True, None
        writer.write(b"354 go ahead\r\n")
        await writer.drain()
        lines = []
        while (body_line := await reader.readline()) != b".\r\n":
            if not body_line:  # the client hung up inside DATA: nothing is delivered
                self.stray += lines
                return False, None
            lines.append(body_line[1:] if body_line.startswith(b".") else body_line)
        if not rcpt_ok:
            writer.write(b"554 5.5.1 no valid recipients\r\n")
            return True, None
        self.data_seen[address] += 1
        if self.fire(address, "drop-after-dot"):
            return False, None
        ahead = None
        if self.lookahead:
            with contextlib.suppress(asyncio.TimeoutError):
                ahead = await asyncio.wait_for(reader.readline(), self.lookahead)
            self.announced += bool(ahead and ahead.upper().startswith(b"MAIL"))
        self.delivered.append(address)
        self.order.append(address)
        self.bodies[address] = b"".join(lines)
        writer.write(b"250 2.0.0 queued\r\n")
        return True, ahead


@pytest.fixture
def pipe() -> Iterator[PipeServer]:
    server = PipeServer(port=free_port())
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def serve() -> Any:
        srv = await asyncio.start_server(server.session, "127.0.0.1", server.port)
        ready.set()
        return srv

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    ready.wait(10)
    try:
        yield server
    finally:

        async def stop() -> None:
            srv.close()
            await srv.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_dot_stuffing_doubles_leading_dots_and_ends_the_data() -> None:
    assert dot_stuffed(b".a\r\nb\r\n.c\r\n") == b"..a\r\nb\r\n..c\r\n.\r\n"
    assert dot_stuffed(b"a\r\n..b") == b"a\r\n...b\r\n.\r\n"
    assert dot_stuffed(b"") == b"\r\n.\r\n"
    assert dot_stuffed(b"no dots\r\n") == b"no dots\r\n.\r\n"


def test_pipelined_transport_delivers_the_exact_bytes(pipe: PipeServer) -> None:
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", pipe.port), timeout=5.0)
    message = b"Subject: dots\r\n\r\n.leading dot\r\nmiddle\r\n..two dots\r\n.\r\n"
    try:
        transport.send("from@example.org", "to@example.com", message)
        transport.send("from@example.org", "again@example.com", message)
    finally:
        transport.close()
    assert pipe.bodies["to@example.com"] == message
    assert pipe.delivered == ["to@example.com", "again@example.com"]
    assert pipe.groups == 2


def test_pipelined_refusals_are_stage_aware(pipe: PipeServer) -> None:
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", pipe.port), timeout=5.0)
    pipe.faults = {
        "no@example.com": ("550", 1),
        "odd@example.com": ("550-then-354", 1),
        "gone@example.com": ("drop-before-data", 1),
        "late@example.com": ("drop-after-dot", 1),
    }
    try:
        with pytest.raises(Rejected) as refused:
            transport.send("from@example.org", "no@example.com", b"x\r\n")
        assert (refused.value.code, refused.value.stage) == (550, "RCPT")
        # The server answered DATA with 354 despite the refused RCPT: the client
        # ends DATA with an empty body and still reports the RCPT refusal.
        with pytest.raises(Rejected) as refused:
            transport.send("from@example.org", "odd@example.com", b"x\r\n")
        assert (refused.value.code, refused.value.stage) == (550, "RCPT")
        pipe.mail_451 = 1
        with pytest.raises(Rejected) as refused:
            transport.send("from@example.org", "ok@example.com", b"x\r\n")
        assert (refused.value.code, refused.value.stage) == (451, "MAIL")
        with pytest.raises(NotSent):
            transport.send("from@example.org", "gone@example.com", b"x\r\n")
        with pytest.raises(Unknown):
            transport.send("from@example.org", "late@example.com", b"x\r\n")
        pipe.mail_421 = 1
        with pytest.raises(Rejected) as refused:
            transport.send("from@example.org", "ok@example.com", b"x\r\n")
        assert (refused.value.code, refused.value.stage) == (421, "MAIL")
        # The connection is still usable (or reopened) after every one of those.
        transport.send("from@example.org", "ok@example.com", b"x\r\n")
    finally:
        transport.close()
    assert pipe.delivered == ["ok@example.com"]
    assert pipe.data_seen == Counter({"late@example.com": 1, "ok@example.com": 1})


def test_pipelined_faults_end_in_the_right_state_per_recipient(cli: Cli, pipe: PipeServer) -> None:
    with edition_with(cli, 12) as ed:
        e = ed.emails
        pipe.mail_451 = 2
        pipe.faults = {
            e[1]: ("550", 1),
            e[2]: ("drop-before-data", 1),
            e[3]: ("drop-after-dot", 1),
            e[4]: ("550-then-354", 1),
        }
        ed.start()
        transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", pipe.port), timeout=5.0)
        options = DeliveryOptions(connections=2, claim_batch=4, backoff=0.01)
        summary = ed.send(transport, options)
        got = ed.outcomes()
        assert got[e[1]] == ("failed", "550 5.1.1 no such user here", 550)
        assert got[e[2]][0] == "sent"  # dropped before DATA: provably not sent, retried
        assert got[e[3]][0] == "unknown"  # dropped after the final dot: not resent
        assert got[e[4]] == ("failed", "550 5.1.1 no such user here", 550)
        assert all(got[x][0] == "sent" for x in [e[0], *e[5:]])
        assert (summary.sent, summary.failed, summary.unknown) == (9, 2, 1)
        assert pipe.data_seen[e[3]] == 1
        # Exactly one accepted message per recipient, never two.
        assert pipe.most_copies() == 1
        # What arrived is the message as built, dot-stuffing undone by the server.
        parsed = message_from_bytes(pipe.bodies[e[0]])
        assert parsed["To"] is not None and e[0] in parsed["To"]


def test_pipelined_next_envelope_carries_its_own_verp_sender(cli: Cli, pipe: PipeServer) -> None:
    pipe.lookahead = 0.2  # counts the envelopes written behind a final dot
    with edition_with(cli, 5, bounce_address="bounces@example.org") as ed:
        ed.start()
        transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", pipe.port), timeout=5.0)
        ed.send(transport, DeliveryOptions(connections=1, claim_batch=5))
        assert pipe.announced == 4  # every next envelope rode behind the previous dot
        key = ed.settings.signing_key()
        with ed.factory() as s:
            by_email = {sub.email: sub.id for sub in s.scalars(select(Subscriber))}
        for address in ed.emails:
            local = pipe.mail_from[address].split("@")[0]
            assert read_verp_tag(key, local.split("+", 1)[1]) == (1, by_email[address])


# -- the next envelope behind the final dot (``then``) ------------------------

FROM = "from@example.org"


def body(i: int) -> bytes:
    return f"Subject: number {i}\r\n\r\n.line with a dot\r\nmessage {i}\r\n".encode()


def chain(transport: SmtpTransport, to: list[str], bodies: list[bytes] | None = None) -> None:
    """Send to each of ``to`` in turn, announcing each next envelope behind the dot."""
    for i, rcpt in enumerate(to):
        then = (FROM, to[i + 1]) if i + 1 < len(to) else None
        transport.send(FROM, rcpt, bodies[i] if bodies else body(i), then=then)


def test_then_writes_the_next_envelope_behind_the_final_dot(pipe: PipeServer) -> None:
    pipe.lookahead = 1.0  # the server waits for the next command before answering a dot
    to = [f"r{i}@example.com" for i in range(6)]
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", pipe.port), timeout=5.0)
    try:
        chain(transport, to)
    finally:
        transport.close()
    # Every message but the last had its successor's MAIL in before the dot's reply.
    assert pipe.announced == 5
    assert pipe.order == to
    assert [pipe.bodies[r] for r in to] == [body(i) for i in range(6)]
    assert pipe.connections == 1


def test_without_then_nothing_is_written_ahead(pipe: PipeServer) -> None:
    pipe.lookahead = 0.2
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", pipe.port), timeout=5.0)
    try:
        for i in range(3):
            transport.send(FROM, f"r{i}@example.com", body(i))
    finally:
        transport.close()
    assert pipe.announced == 0
    assert pipe.order == ["r0@example.com", "r1@example.com", "r2@example.com"]


@dataclass
class PipeliningAiosmtpd:
    """aiosmtpd that also advertises PIPELINING (it reads commands in order anyway)."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    ehlos: int = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.ehlos += 1
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK queued"


def test_then_over_many_messages_arrives_intact_and_in_order_at_aiosmtpd() -> None:
    from conftest import running_smtp

    handler = PipeliningAiosmtpd()
    to = [f"reader{i}@example.com" for i in range(60)]
    bodies = [body(i) + b"..x\r\n" * (i * 97 % 900) for i in range(60)]
    with running_smtp(handler) as port:
        transport = SmtpTransport(
            SmtpTarget("smtp", "127.0.0.1", port), timeout=5.0, per_connection=25
        )
        try:
            chain(transport, to, bodies)
        finally:
            transport.close()
    assert [rcpts for rcpts, _ in handler.received] == [[r] for r in to]
    assert [data for _, data in handler.received] == bodies
    assert handler.ehlos == 3  # 25 + 25 + 10: none announced on a connection at its cap


def test_then_refused_next_envelope_is_that_next_messages_rejection(pipe: PipeServer) -> None:
    pipe.faults = {"b@example.com": ("550", 1)}
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", pipe.port), timeout=5.0)
    try:
        transport.send(FROM, "a@example.com", body(0), then=(FROM, "b@example.com"))
        with pytest.raises(Rejected) as refused:
            transport.send(FROM, "b@example.com", body(1), then=(FROM, "c@example.com"))
        assert (refused.value.code, refused.value.stage) == (550, "RCPT")
        transport.send(FROM, "c@example.com", body(2))
    finally:
        transport.close()
    assert pipe.order == ["a@example.com", "c@example.com"]
    assert pipe.data_seen["b@example.com"] == 0


def test_then_drop_before_the_next_envelopes_replies_is_not_sent(pipe: PipeServer) -> None:
    pipe.faults = {"b@example.com": ("drop-before-data", 1)}
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", pipe.port), timeout=5.0)
    try:
        transport.send(FROM, "a@example.com", body(0), then=(FROM, "b@example.com"))
        with pytest.raises(NotSent):
            transport.send(FROM, "b@example.com", body(1), then=(FROM, "c@example.com"))
        transport.send(FROM, "b@example.com", body(1), then=(FROM, "c@example.com"))
        transport.send(FROM, "c@example.com", body(2))
    finally:
        transport.close()
    assert pipe.order == ["a@example.com", "b@example.com", "c@example.com"]
    assert pipe.connections == 2


def test_then_drop_after_the_dot_is_unknown_and_the_next_goes_fresh(pipe: PipeServer) -> None:
    pipe.faults = {"a@example.com": ("drop-after-dot", 1)}
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", pipe.port), timeout=5.0)
    try:
        with pytest.raises(Unknown):
            transport.send(FROM, "a@example.com", body(0), then=(FROM, "b@example.com"))
        transport.send(FROM, "b@example.com", body(1))
    finally:
        transport.close()
    assert pipe.data_seen["a@example.com"] == 1
    assert pipe.order == ["b@example.com"]


def test_then_a_different_next_message_hangs_up_the_announced_one(pipe: PipeServer) -> None:
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", pipe.port), timeout=5.0)
    try:
        transport.send(FROM, "a@example.com", body(0), then=(FROM, "b@example.com"))
        transport.send(FROM, "c@example.com", body(2))  # not b: the announced DATA is abandoned
    finally:
        transport.close()
    assert pipe.order == ["a@example.com", "c@example.com"]
    assert pipe.data_seen["b@example.com"] == 0
    assert pipe.stray == []  # nothing was fed into b's open DATA


def test_then_unsendable_next_message_feeds_nothing_into_its_data(pipe: PipeServer) -> None:
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", pipe.port), timeout=5.0)
    wide = b"Subject: wide\r\n\r\n" + b"x" * 1200 + b"\r\n"
    try:
        transport.send(FROM, "a@example.com", body(0), then=(FROM, "b@example.com"))
        with pytest.raises(Unsendable):
            transport.send(FROM, "b@example.com", wide)
        transport.send(FROM, "c@example.com", body(2))
    finally:
        transport.close()
    assert pipe.order == ["a@example.com", "c@example.com"]
    assert pipe.data_seen["b@example.com"] == 0 and pipe.stray == []


def test_close_with_an_envelope_announced_delivers_nothing_more(pipe: PipeServer) -> None:
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", pipe.port), timeout=5.0)
    transport.send(FROM, "a@example.com", body(0), then=(FROM, "b@example.com"))
    transport.close()  # e.g. SIGTERM between the two: no QUIT into b's open DATA
    transport.send(FROM, "c@example.com", body(2))
    transport.close()
    assert pipe.order == ["a@example.com", "c@example.com"]
    assert pipe.stray == []
