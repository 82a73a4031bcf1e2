"""Benchmark: `digest subscribers import` of 100,000 CSV rows into a fresh SQLite database.

Writes a 100k-row CSV (name, time zone, a custom column; a few IDN and
mixed-case domains) in a temp dir, times the real CLI import into a fresh
database, and in the same run a naive reference: email-validator on every
address and one ORM add + flush per row, on the first 5,000 rows,
extrapolated to 100k. Exits 1 if the import takes longer than the target.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from email_validator import validate_email

from digest.core.db import make_engine, session_factory, upgrade, utcnow
from subscribers.models import Subscriber

ROWS = 100_000
NAIVE_ROWS = 5_000
TARGET_SECONDS = 30.0
ZONES = ["Europe/Paris", "America/New_York", "", "Asia/Tokyo"]
DOMAINS = ["example.com", "Example.org", "mail.example.net", "bücher.example", "sub.example.co.uk"]


def write_csv(path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["email", "name", "timezone", "plan"])
        for i in range(ROWS):
            domain = DOMAINS[i % len(DOMAINS)]
            out.writerow(
                [f"reader{i:06d}@{domain}", f"Reader {i}, Jr.", ZONES[i % 4], f"plan{i % 3}"]
            )


def cli_import(path: Path, var: Path) -> float:
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": f"sqlite:///{var / 'digest.db'}",
        "DIGEST_VAR_DIR": str(var),
        "DIGEST_SECRET_KEY": "bench",
    }
    digest = [sys.executable, "-m", "digest"]
    subprocess.run([*digest, "init"], env=env, check=True, capture_output=True)
    start = time.perf_counter()
    done = subprocess.run(
        [*digest, "subscribers", "import", str(path)], env=env, check=True, capture_output=True
    )
    seconds = time.perf_counter() - start
    print(done.stdout.decode().strip())
    return seconds


def naive_import(path: Path, var: Path) -> float:
    """One validate_email, one ORM add and one flush per row (what the fast path replaces)."""
    engine = make_engine(f"sqlite:///{var / 'naive.db'}")
    upgrade(engine)
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for _, r in zip(range(NAIVE_ROWS), csv.DictReader(fh), strict=False)]
    start = time.perf_counter()
    with session_factory(engine)() as s:
        for r in rows:
            key = validate_email(r["email"], check_deliverability=False).normalized
            now = utcnow()
            s.add(
                Subscriber(
                    email=r["email"],
                    email_key=key,
                    name=r["name"],
                    timezone=r["timezone"] or None,
                    attributes={"plan": r["plan"]},
                    created_at=now,
                    status_changed_at=now,
                    confirmed_at=now,
                )
            )
            s.flush()
        s.commit()
    engine.dispose()
    return (time.perf_counter() - start) * ROWS / NAIVE_ROWS


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        path = base / "subscribers.csv"
        write_csv(path)
        fast = cli_import(path, base / "fast")
        naive = naive_import(path, base)
    print(f"import: {ROWS:,} rows in {fast:.1f} s = {ROWS / fast:,.0f} rows/s (CLI, process start)")
    print(
        f"naive (validate + ORM add/flush per row): {ROWS / naive:,.0f} rows/s, "
        f"~{naive:.0f} s for {ROWS:,} (extrapolated from {NAIVE_ROWS:,})"
    )
    print(f"speed-up {naive / fast:.1f}x; target < {TARGET_SECONDS:.0f} s")
    return 0 if fast < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
