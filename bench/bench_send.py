"""Benchmark: a whole `digest send` against the machine's ceiling, measured in the same run.

Run with `make bench` (or `python bench/bench_send.py [N ...]` for other sizes).
Into one local sink (Postfix's smtp-sink when installed, else aiosmtpd):

- ours: `digest send 1` as a subprocess through the CLI (start-up, ledger
  creation and everything included), DIGEST_SMTP_CONNECTIONS=4, on a SQLite
  database prepared beforehand (seed stories, one edition, N subscribers);
  its peak RSS comes from wait4() on that child alone;
- the ceiling: four separate processes, one connection each, the edition's
  message bytes built once, the next envelope pipelined behind each final dot
  (RFC 2920), no per-message work at all;
- the single-connection raw sender: the same bytes, one connection, waiting
  for each reply (sampled);
- the naive loop: parse into an EmailMessage, smtplib send_message and a
  committed row per message (sampled, and extrapolated to N: said so);
- the ledger: lifecycle.start creating 100,000 rows, against a plain
  executemany INSERT of 100,000 rows into the same table in the same run.

Targets print PASS/FAIL (ours >= 0.9x the ceiling at 20,000; peak RSS at
100,000 <= 1.2x that at 10,000); the bench exits 0 unless it cannot run,
since machines drift (speed is never asserted in the tests).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10_000, 20_000, 100_000)
GATE = 20_000  # the size at which ours must reach RATIO_TARGET of the ceiling
RATIO_TARGET = 0.9
RSS_TARGET = 1.2
NAIVE_SAMPLE = 1_000
RAW_SAMPLE = 10_000
LEDGER_ROWS = 100_000
CONNECTIONS = 4
SENDER = "digest@localhost"


def start_sink() -> tuple[subprocess.Popen[bytes], int, str]:
    from digest.processes.sink import free_port

    port = free_port()
    exe = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if Path(exe).exists():
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


# -- the database ours sends from ----------------------------------------------


def cli_env(workdir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        DIGEST_DATABASE_URL=f"sqlite:///{workdir / 'bench.db'}",
        DIGEST_SMTP_URL=f"smtp://127.0.0.1:{port}",
        DIGEST_SMTP_CONNECTIONS=str(CONNECTIONS),
        DIGEST_SECRET_KEY="bench-secret-key-bench-secret-key",
    )
    return env


def digest(env: dict[str, str], cwd: Path, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def add_subscribers(url: str, n: int) -> None:
    from sqlalchemy import insert

    from digest.core.db import make_engine, session_factory, transaction, utcnow
    from subscribers.models import Subscriber
    from subscribers.status import SubscriberStatus

    engine = make_engine(url)
    now = utcnow()
    with transaction(session_factory(engine)) as s:
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
    engine.dispose()


def prepare(n: int, port: int) -> tuple[Path, dict[str, str]]:
    """A database with the seed stories, edition 1 (a draft) and n active subscribers."""
    workdir = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    env = cli_env(workdir, port)
    digest(env, workdir, "init")
    digest(env, workdir, "stories", "import", *map(str, sorted((ROOT / "seeds/stories").iterdir())))
    digest(env, workdir, "edition", "build")
    add_subscribers(env["DIGEST_DATABASE_URL"], n)
    return workdir, env


def edition_message(port: int) -> bytes:
    """The bytes of edition 1's message for one reader, as `digest preview` builds them."""
    workdir, env = prepare(1, port)
    try:
        digest(env, workdir, "preview", "1", "--format", "eml", "-o", "message.eml")
        return (workdir / "message.eml").read_bytes()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def ours(n: int, port: int) -> dict[str, float]:
    """`digest send 1` through the CLI: wall time and that child's peak RSS."""
    workdir, env = prepare(n, port)
    try:
        began = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "digest", "send", "1"],
            env=env,
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert child.stdout is not None
        output = child.stdout.read().decode()
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(status)
        db = sqlite3.connect(workdir / "bench.db")
        sent = db.execute("SELECT count(*) FROM deliveries WHERE state = 'sent'").fetchone()[0]
        db.close()
        if child.returncode != 0 or sent != n:
            raise SystemExit(
                f"digest send failed (exit {child.returncode}, {sent}/{n} sent):\n{output}"
            )
        return {"s": elapsed, "rss_mb": usage.ru_maxrss / 1024}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- references against the same sink ----------------------------------------------------


class Replies:
    """Reads SMTP replies off a socket; each must be 2xx/3xx."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")

    def read(self, count: int = 1) -> None:
        for _ in range(count):
            line = self.file.readline()
            while line[3:4] == b"-":
                line = self.file.readline()
            if line[:1] not in (b"2", b"3"):
                raise RuntimeError(f"sink refused: {line!r}")


def session(port: int) -> tuple[socket.socket, Replies]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    replies = Replies(sock)
    replies.read()
    sock.sendall(b"EHLO bench.example\r\n")
    replies.read()
    return sock, replies


def envelope(i: int) -> bytes:
    return f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<reader{i}@example.com>\r\nDATA\r\n".encode()


def ceiling_process(
    port: int, payload: bytes, first: int, count: int, start: Any, out: Any
) -> None:
    """One connection: each final dot carries the next envelope behind it."""
    envelopes = [envelope(i) for i in range(first, first + count)] + [b""]
    sock, replies = session(port)
    start.wait()
    began = time.perf_counter()
    sock.sendall(envelopes[0])
    replies.read(3)
    for i in range(count):
        ahead = envelopes[i + 1]
        if sock.sendmsg([payload, ahead]) < len(payload) + len(ahead):
            raise RuntimeError("short write")  # a blocking socket writes it all
        replies.read(4 if ahead else 1)
    out.put((began, time.perf_counter()))
    sock.sendall(b"QUIT\r\n")
    sock.close()


def rate_in_processes(target: Any, args: tuple[Any, ...], n: int) -> float:
    """n messages over CONNECTIONS forked processes, ``target(*args, first, count, start, out)``
    each, started together; the rate from the first start to the last finish."""
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(CONNECTIONS + 1), ctx.Queue()
    share = n // CONNECTIONS
    procs = [
        ctx.Process(target=target, args=(*args, k * share, share, start, out))
        for k in range(CONNECTIONS)
    ]
    for p in procs:
        p.start()
    start.wait()
    spans = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a sending process failed ({target.__name__})")
    return share * CONNECTIONS / (max(e for _, e in spans) - min(b for b, _ in spans))


def ceiling_rate(port: int, payload: bytes, n: int) -> float:
    return rate_in_processes(ceiling_process, (port, payload), n)


def raw_rate(port: int, payload: bytes, count: int) -> float:
    """One connection, the same bytes, MAIL / RCPT / DATA / data each awaiting its reply."""
    sock, replies = session(port)
    began = time.perf_counter()
    for i in range(count):
        sock.sendall(f"MAIL FROM:<{SENDER}>\r\n".encode())
        replies.read()
        sock.sendall(f"RCPT TO:<reader{i}@example.com>\r\n".encode())
        replies.read()
        sock.sendall(b"DATA\r\n")
        replies.read()
        sock.sendall(payload)
        replies.read()
    elapsed = time.perf_counter() - began
    sock.close()
    return count / elapsed


def naive_rate(port: int, message: bytes, count: int) -> float:
    """An EmailMessage per recipient, smtplib send_message, a committed row each."""
    workdir = Path(tempfile.mkdtemp(prefix="digest-naive-"))
    db = sqlite3.connect(workdir / "naive.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE sent (id INTEGER PRIMARY KEY, email TEXT, at REAL)")
    began = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as conn:
        for i in range(count):
            msg = message_from_bytes(message, policy=policy.SMTP)
            del msg["To"]
            msg["To"] = f"Reader <reader{i}@example.com>"
            conn.send_message(msg, from_addr=SENDER)
            db.execute("INSERT INTO sent (email, at) VALUES (?, ?)", (msg["To"], time.time()))
            db.commit()
    elapsed = time.perf_counter() - began
    db.close()
    shutil.rmtree(workdir, ignore_errors=True)
    return count / elapsed


def ledger_times(port: int, rows: int) -> tuple[float, float]:
    """(lifecycle.start creating ``rows`` rows, a plain executemany INSERT of as many)."""
    from digest.core.db import make_engine, session_factory, transaction
    from digest.core.models import Edition
    from digest.delivery import lifecycle

    workdir, env = prepare(rows, port)
    try:
        url = env["DIGEST_DATABASE_URL"]
        db = sqlite3.connect(workdir / "bench.db")
        ids = [r[0] for r in db.execute("SELECT id FROM subscribers ORDER BY id")]
        db.execute(
            "INSERT INTO editions (id, status, created_at) SELECT 2, 'draft', created_at"
            " FROM editions WHERE id = 1"
        )
        db.commit()
        began = time.perf_counter()
        db.executemany(
            "INSERT INTO deliveries (edition_id, subscriber_id, state, message_id, attempts,"
            " updated_at) VALUES (2, ?, 'pending', ?, 0, '2026-01-01 00:00:00')",
            [(sid, f"<2.{sid}@bench.example>") for sid in ids],
        )
        db.commit()
        reference = time.perf_counter() - began
        db.close()
        engine = make_engine(url)
        sessions = session_factory(engine)
        began = time.perf_counter()
        with transaction(sessions) as s:
            edition = s.get(Edition, 1)
            assert edition is not None
            lifecycle.start(s, edition, "bench.example")
        ours_s = time.perf_counter() - began
        engine.dispose()
        return ours_s, reference
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from digest.transports.envelope import dot_stuffed

    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    sink, port, kind = start_sink()
    try:
        message = edition_message(port)
        payload = dot_stuffed(message)
        print(
            f"sink: {kind} on 127.0.0.1:{port}; message {len(message) / 1024:.1f} KB;"
            f" {CONNECTIONS} connections; {os.cpu_count()} CPUs"
        )
        naive = naive_rate(port, message, NAIVE_SAMPLE)
        raw = raw_rate(port, payload, RAW_SAMPLE)
        results: dict[int, dict[str, float]] = {}
        for n in sizes:
            ceiling = ceiling_rate(port, payload, n)
            r = ours(n, port)
            rate = n / r["s"]
            results[n] = {**r, "rate": rate, "ceiling": ceiling}
            print(f"\n{n:,} subscribers ({n / ceiling:.1f} s at the ceiling):")
            rows = [
                ("ours: digest send (CLI, whole run)", rate, ""),
                ("ceiling: 4 processes, pipelined, pre-built", ceiling, ""),
                ("raw sender, one connection", raw, f" (sample of {RAW_SAMPLE:,})"),
                (
                    "naive loop (EmailMessage+smtplib+commit)",
                    naive,
                    f" (sample of {NAIVE_SAMPLE:,}, extrapolated: {n / naive / 60:.0f} min)",
                ),
            ]
            for name, value, note in rows:
                print(f"  {name:44} {value:7.0f} msg/s  {value / ceiling:5.2f}x ceiling{note}")
            passed = verdict(rate / ceiling >= RATIO_TARGET)
            gate = f"  (target >= {RATIO_TARGET}x at {GATE:,}: {passed})"
            print(
                f"  ours peak RSS {r['rss_mb']:.0f} MB; ours / ceiling {rate / ceiling:.2f}"
                + (gate if n == GATE else "")
            )
        small, large = min(results), max(results)
        if small != large:
            growth = results[large]["rss_mb"] / results[small]["rss_mb"]
            print(
                f"\npeak RSS {small:,} -> {large:,}: {results[small]['rss_mb']:.0f} ->"
                f" {results[large]['rss_mb']:.0f} MB = {growth:.2f}x"
                f" (target <= {RSS_TARGET}x: {verdict(growth <= RSS_TARGET)})"
            )
        ledger, reference = ledger_times(port, LEDGER_ROWS)
        print(
            f"ledger: lifecycle.start creates {LEDGER_ROWS:,} rows in {ledger:.2f} s;"
            f" a plain executemany INSERT of as many {reference:.2f} s ({ledger / reference:.1f}x)"
        )
        print(json.dumps({"results": results, "raw": raw, "naive": naive}), file=sys.stderr)
    finally:
        sink.terminate()
        sink.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
