"""Prototype: how close SmtpTransport alone comes to the ceiling, without the ledger.

`python bench/bench_transport.py [N]` (not part of `make bench`): N pre-built
messages of edition 1 into the same sink as bench_send, through
`SmtpTransport.send`, in the shapes a delivery manager could take — four
threads sharing one transport, with and without ``then`` (the next envelope
pipelined behind each dot), and four processes of one connection each with
``then`` — each against the ceiling measured in the same run. What is left
between these and `digest send` is the manager's own work (claims, commits,
building each message).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_send import (
    CONNECTIONS,
    SENDER,
    ceiling_rate,
    edition_message,
    rate_in_processes,
    start_sink,
)

from digest.transports.envelope import dot_stuffed
from digest.transports.smtp import SmtpTarget, SmtpTransport


def run_share(
    transport: SmtpTransport, message: bytes, first: int, count: int, ahead: bool
) -> None:
    to = [f"reader{i}@example.com" for i in range(first, first + count)]
    for i, rcpt in enumerate(to):
        then = (SENDER, to[i + 1]) if ahead and i + 1 < count else None
        transport.send(SENDER, rcpt, message, then=then)


def threads_rate(port: int, message: bytes, n: int, ahead: bool) -> float:
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", port), per_connection=n)
    share = n // CONNECTIONS
    workers = [
        threading.Thread(target=run_share, args=(transport, message, k * share, share, ahead))
        for k in range(CONNECTIONS)
    ]
    began = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    transport.close()
    return share * CONNECTIONS / elapsed


def one_process(port: int, message: bytes, first: int, count: int, start: Any, out: Any) -> None:
    transport = SmtpTransport(SmtpTarget("smtp", "127.0.0.1", port), per_connection=count)
    start.wait()
    began = time.perf_counter()
    run_share(transport, message, first, count, True)
    out.put((began, time.perf_counter()))
    transport.close()


def processes_rate(port: int, message: bytes, n: int) -> float:
    return rate_in_processes(one_process, (port, message), n)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    sink, port, kind = start_sink()
    try:
        message = edition_message(port)
        ceiling = ceiling_rate(port, dot_stuffed(message), n)
        print(f"{n:,} messages of {len(message) / 1024:.1f} KB into {kind}:")
        rows = [
            ("ceiling: 4 processes, raw socket, pipelined", ceiling),
            ("SmtpTransport, 4 threads, no then", threads_rate(port, message, n, False)),
            ("SmtpTransport, 4 threads, then", threads_rate(port, message, n, True)),
            ("SmtpTransport, 4 processes, then", processes_rate(port, message, n)),
        ]
        for name, rate in rows:
            print(f"  {name:46} {rate:7.0f} msg/s  {rate / ceiling:5.2f}x ceiling")
    finally:
        sink.terminate()
        sink.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
