"""Benchmark: per-recipient message bytes for a 10-story edition (run with `make bench`).

Renders once, then builds 10,000 recipients' messages with the precompiled fast
path and, in the same run, a sample with an EmailMessage per recipient.
Prints the median microseconds per recipient of each.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fixed_edition import fixed_factory, fixed_view

from digest.mail.message import Recipient

RECIPIENTS = 10_000
REFERENCE_SAMPLE = 500
TARGET_US = 50.0


def timed(build, recipients: list[Recipient]) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    clock = time.perf_counter_ns
    for recipient in recipients:
        start = clock()
        build(recipient)
        times.append((clock() - start) / 1000)
    return times


def main() -> int:
    start = time.perf_counter()
    factory = fixed_factory(fixed_view(10))
    size = len(factory.build(Recipient(0, "reader@example.com", "Reader")))
    render_ms = (time.perf_counter() - start) * 1000
    names = ["Ada Lovelace", "Zoë Müller", "", "Grace Hopper", "李小龍"]
    recipients = [
        Recipient(i, f"reader{i}@example.com", names[i % len(names)]) for i in range(RECIPIENTS)
    ]
    fast = timed(factory.build, recipients)
    slow = timed(factory.build_reference, recipients[:REFERENCE_SAMPLE])
    fast_median, slow_median = statistics.median(fast), statistics.median(slow)
    print(f"edition: 10 stories, message {size / 1024:.1f} KB; render + compile {render_ms:.1f} ms")
    print(f"fast path (byte template): median {fast_median:8.1f} µs/recipient ({RECIPIENTS:,})")
    print(
        f"EmailMessage per recipient: median {slow_median:8.1f} µs/recipient "
        f"({REFERENCE_SAMPLE:,} sampled)"
    )
    print(f"speed-up {slow_median / fast_median:.0f}x; target <= {TARGET_US:.0f} µs")
    return 0 if fast_median <= TARGET_US else 1


if __name__ == "__main__":
    raise SystemExit(main())
