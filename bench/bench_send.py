"""Benchmark: send a 10-story edition to 10,000 and 100,000 subscribers (run with `make bench`).

SQLite under a temporary directory, subscribers bulk-inserted, a local fast
sink (Postfix's smtp-sink when installed, else aiosmtpd). Each size runs in
its own process so its peak RSS is its own. In the same run, two references
against the same sink: a naive loop (EmailMessage + smtplib sendmail + a
committed row per message, sampled) and a raw socket writing prebuilt bytes
over one connection.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fixed_edition import fixed_factory, fixed_view
from sqlalchemy import insert, text

from digest.core.db import make_engine, session_factory, transaction, upgrade, utcnow
from digest.core.models import Edition
from digest.core.status import EditionStatus
from digest.delivery import lifecycle
from digest.delivery.manager import DeliveryManager, DeliveryOptions
from digest.mail.message import Recipient
from digest.processes.sink import free_port
from digest.transports.smtp import SmtpTarget, SmtpTransport
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus

SIZES = (10_000, 100_000)
NAIVE_SAMPLE = 2_000
RAW_SAMPLE = 20_000
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "4"))


def start_sink() -> tuple[subprocess.Popen[bytes], int, str]:
    port = free_port()
    if shutil.which("smtp-sink") or Path("/usr/sbin/smtp-sink").exists():
        exe = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        cmd = [exe, *user, "-c", f"127.0.0.1:{port}", "1000"]
        kind = "postfix smtp-sink"
    else:
        code = (
            "import sys,time; from aiosmtpd.controller import Controller\n"
            "class H:\n async def handle_DATA(self,s,se,e): return '250 OK'\n"
            f"c=Controller(H(),hostname='127.0.0.1',port={port}); c.start()\n"
            "while True: time.sleep(60)\n"
        )
        cmd = [sys.executable, "-c", code]
        kind = "aiosmtpd (install postfix for smtp-sink)"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, port, kind


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_size(n: int, port: int) -> dict[str, float]:
    """Create the ledger for n subscribers and send through the engine (runs in a child)."""
    factory = fixed_factory(fixed_view(10))
    workdir = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    try:
        engine = make_engine(f"sqlite:///{workdir / 'bench.db'}")
        upgrade(engine)
        sessions = session_factory(engine)
        now = utcnow()
        with transaction(sessions) as s:
            s.add(Edition(id=factory.edition_id, status=EditionStatus.DRAFT, created_at=now))
            for first in range(0, n, 10_000):
                s.execute(
                    insert(Subscriber),
                    [
                        {
                            "email": f"reader{i}@example.com",
                            "email_key": f"reader{i}@example.com",
                            "name": "Reader",
                            "status": SubscriberStatus.ACTIVE,
                            "source": "bench",
                            "created_at": now,
                            "status_changed_at": now,
                        }
                        for i in range(first, min(n, first + 10_000))
                    ],
                )
        began = time.perf_counter()
        with transaction(sessions) as s:
            edition = s.get(Edition, factory.edition_id)
            assert edition is not None
            lifecycle.start(s, edition, factory.domain)
        ledger_s = time.perf_counter() - began
        transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", port))
        options = DeliveryOptions(connections=CONNECTIONS, claim_batch=500)
        began = time.perf_counter()
        summary = DeliveryManager(sessions, transport, factory, options).run()
        send_s = time.perf_counter() - began
        with sessions() as s:
            sent = s.scalar(text("SELECT count(*) FROM deliveries WHERE state = 'sent'"))
        engine.dispose()
        assert sent == n == summary.sent, (sent, n, summary)
        return {"n": n, "ledger_s": ledger_s, "send_s": send_s, "rss_mb": peak_rss_mb()}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def naive_rate(port: int) -> float:
    """One EmailMessage and one smtplib sendmail per subscriber (one connection), a commit each."""
    import sqlite3

    factory = fixed_factory(fixed_view(10))
    workdir = Path(tempfile.mkdtemp(prefix="digest-naive-"))
    db = sqlite3.connect(workdir / "naive.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE sent (id INTEGER PRIMARY KEY, email TEXT, at REAL)")
    began = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as conn:
        for i in range(NAIVE_SAMPLE):
            to = Recipient(i, f"reader{i}@example.com", "Reader")
            message = factory.build_reference(to)
            conn.sendmail("digest@news.example.org", [to.email], message)
            db.execute("INSERT INTO sent (email, at) VALUES (?, ?)", (to.email, time.time()))
            db.commit()
    elapsed = time.perf_counter() - began
    db.close()
    shutil.rmtree(workdir, ignore_errors=True)
    return NAIVE_SAMPLE / elapsed


def raw_socket_rate(port: int) -> float:
    """Prebuilt messages over one connection, pipelined by hand: the wire's ceiling."""
    factory = fixed_factory(fixed_view(10))
    message = factory.build(Recipient(1, "reader1@example.com", "Reader"))
    payload = message if message.endswith(b"\r\n") else message + b"\r\n"
    sock = socket.create_connection(("127.0.0.1", port))
    reader = sock.makefile("rb")

    def reply() -> bytes:
        while True:
            line = reader.readline()
            if line[3:4] != b"-":
                return line

    reply()
    sock.sendall(b"EHLO bench\r\n")
    reply()
    began = time.perf_counter()
    for i in range(RAW_SAMPLE):
        sock.sendall(b"MAIL FROM:<digest@news.example.org>\r\n")
        reply()
        sock.sendall(f"RCPT TO:<reader{i}@example.com>\r\n".encode())
        reply()
        sock.sendall(b"DATA\r\n")
        reply()
        sock.sendall(payload + b".\r\n")
        reply()
    elapsed = time.perf_counter() - began
    sock.sendall(b"QUIT\r\n")
    sock.close()
    return RAW_SAMPLE / elapsed


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(one_size(int(sys.argv[2]), int(os.environ["BENCH_PORT"]))))
        return 0
    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    sink, port, kind = start_sink()
    try:
        size = len(fixed_factory(fixed_view(10)).build(Recipient(1, "a@example.com", "A")))
        print(
            f"sink: {kind} on 127.0.0.1:{port}; message {size / 1024:.1f} KB; "
            f"{CONNECTIONS} connections; {os.cpu_count()} CPUs"
        )
        naive = naive_rate(port)
        print(f"naive loop (EmailMessage + sendmail + commit per message): {naive:7.0f} msg/s")
        raw = raw_socket_rate(port)
        print(f"raw socket, prebuilt bytes, one connection:              {raw:7.0f} msg/s")
        results = []
        for n in sizes:
            env = {**os.environ, "BENCH_PORT": str(port)}
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(n)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            results.append(r)
            rate = n / r["send_s"]
            print(
                f"digest engine, {n:>7,} subscribers: ledger {r['ledger_s']:5.1f}s, "
                f"send {r['send_s']:6.1f}s = {rate:6.0f} msg/s "
                f"({rate / naive:4.1f}x naive, {100 * rate / raw:3.0f}% of raw), "
                f"peak RSS {r['rss_mb']:.0f} MB"
            )
        if len(results) > 1:
            growth = results[-1]["rss_mb"] / results[0]["rss_mb"]
            print(f"peak RSS growth {results[0]['n']:,} -> {results[-1]['n']:,}: {growth:.2f}x")
    finally:
        sink.terminate()
        sink.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
