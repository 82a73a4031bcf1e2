"""Benchmark: how fast the CLI starts, against `python -c "import click"` in the same run.

Runs `digest --version`, `digest --help` and the click import as whole
processes, in turn (A, B, C, A, B, C, …) so a machine that drifts affects all
three alike, and prints each one's median wall time and its ratio to the
click import. Commands import what they need when they run, so both
must stay within TARGET_RATIO of the reference; exits 1 otherwise.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 15
TARGET_RATIO = 3.0
DIGEST = [sys.executable, "-m", "digest"]
COMMANDS = {
    'python -c "import click"': [sys.executable, "-c", "import click"],
    "digest --version": [*DIGEST, "--version"],
    "digest --help": [*DIGEST, "--help"],
}


def wall_time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=Path(__file__).parent)
    return time.perf_counter() - started


def main() -> int:
    for command in COMMANDS.values():  # warm the file cache
        wall_time(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(RUNS):
        for name, command in COMMANDS.items():
            times[name].append(wall_time(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    reference = medians['python -c "import click"']
    print(f"startup, median of {RUNS} runs each, interleaved:")
    failed = False
    for name, median in medians.items():
        ratio = median / reference
        verdict = ""
        if name != 'python -c "import click"':
            ok = ratio <= TARGET_RATIO
            failed |= not ok
            verdict = f"  (target <= {TARGET_RATIO:.0f}x: {'ok' if ok else 'TOO SLOW'})"
        print(f"  {name:26} {median * 1000:7.1f} ms  {ratio:5.2f}x{verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
