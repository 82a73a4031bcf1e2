"""The pipelined SMTP path (RFC 2920) against a tiny server that advertises PIPELINING.

aiosmtpd does not advertise PIPELINING, so this server is written here. It
only answers MAIL once RCPT and DATA have arrived too, so a client that does
not pipeline would stall (and fail) rather than pass by accident.
"""

from __future__ import annotations

import asyncio
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

from digest.delivery.manager import DeliveryOptions
from digest.processes.sink import free_port
from digest.transports.base import NotSent, Rejected, Unknown
from digest.transports.envelope import dot_stuffed
from digest.transports.smtp import SmtpTarget, SmtpTransport


@dataclass
class PipeServer(FaultPlan):
    """A pipelining SMTP server on ``port`` that answers as its fault plan says."""

    port: int = 0
    mail_451: int = 0
    mail_421: int = 0
    bodies: dict[str, bytes] = field(default_factory=dict)
    groups: int = 0  # MAIL + RCPT + DATA groups answered

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"220 pipe.test ESMTP\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-pipe.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb == b"MAIL":
                    if not await self.transaction(reader, writer):
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

    async def transaction(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One pipelined group; False when the connection is to be dropped."""
        rcpt = await reader.readline()
        data = await reader.readline()
        assert rcpt.upper().startswith(b"RCPT TO:<") and data.upper() == b"DATA\r\n"
        address = rcpt[9:].split(b">")[0].decode()
        self.groups += 1
        if self.mail_421 > 0:
            self.mail_421 -= 1
            writer.write(b"421 4.3.2 too busy, closing\r\n")
            return False
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
            return False
        writer.write(b"250 OK\r\n" if mail_ok else b"451 4.3.0 try again later\r\n")
        writer.write(b"250 OK\r\n" if rcpt_ok else b"550 5.1.1 no such user here\r\n")
        if not (rcpt_ok or data_anyway):
            writer.write(b"554 5.5.1 no valid recipients\r\n")
            return True
        writer.write(b"354 go ahead\r\n")
        await writer.drain()
        lines = []
        while (body_line := await reader.readline()) != b".\r\n":
            assert body_line, "connection closed in DATA"
            lines.append(body_line[1:] if body_line.startswith(b".") else body_line)
        if not rcpt_ok:
            writer.write(b"554 5.5.1 no valid recipients\r\n")
            return True
        self.data_seen[address] += 1
        if self.fire(address, "drop-after-dot"):
            return False
        self.delivered.append(address)
        self.bodies[address] = b"".join(lines)
        writer.write(b"250 2.0.0 queued\r\n")
        return True


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
        options = DeliveryOptions(connections=2, claim_batch=4, window=2, backoff=0.01)
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
