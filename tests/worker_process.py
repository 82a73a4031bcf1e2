"""Helpers for tests of long-running processes: start `digest …` with its log in a file, wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conftest import Captured, Cli
from sqlalchemy import func, select

from digest.core.db import make_engine, session_factory
from digest.core.models import Worker


def wait_for(condition: Callable[[], object], timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        """SIGTERM, then the exit status (killed after 60 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"did not stop on SIGTERM:\n{self.log}") from None


@contextmanager
def digest_process(cli: Cli, name: str, *args: str, **env: str) -> Iterator[Process]:
    """`digest ARGS` in a subprocess (this checkout's code), stdout and stderr in NAME.log."""
    log_path = cli.cwd / f"{name}.log"
    with log_path.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", *args],
            cwd=cli.cwd,
            env={**os.environ, **cli.env, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        process = Process(proc, log_path)
        try:
            yield process
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def received(captured: Captured) -> Counter[str]:
    """How many messages each envelope recipient got."""
    return Counter(r for _, rcpts, _ in captured.envelopes for r in rcpts)


def workers_alive(cli: Cli) -> int:
    engine = make_engine(cli.env["DIGEST_DATABASE_URL"])
    try:
        with session_factory(engine)() as s:
            return int(s.scalar(select(func.count()).select_from(Worker)) or 0)
    finally:
        engine.dispose()
