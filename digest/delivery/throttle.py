"""Throttling shared by every sending thread: messages/second, a rolling hourly cap, backoff."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

HOUR = 3600.0


class HourlyCapReached(Exception):
    """Sending now would exceed the hourly cap; the next slot is ``seconds`` away."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"hourly limit reached; next slot in {seconds:.0f}s")


class RateLimit:
    """A global limit of ``per_second`` messages/s and ``per_hour`` in any rolling hour.

    ``wait()`` blocks the calling thread until it may send one message; zero
    disables a limit. It returns False if ``stop`` was set while waiting, and
    raises ``HourlyCapReached`` rather than wait longer than ``max_wait`` for
    the hourly cap (the caller leaves the rest for a later run).
    """

    def __init__(
        self,
        per_second: float = 0.0,
        per_hour: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.per_hour = per_hour
        self.clock = clock
        self._lock = threading.Lock()
        self._next = 0.0
        self._hour: deque[float] = deque()

    def seed(self, ages: Iterable[float]) -> None:
        """Count earlier sends (``ages`` seconds ago, e.g. from the ledger) against the cap."""
        with self._lock:
            now = self.clock()
            self._hour.extend(sorted(now - age for age in ages if age < HOUR))

    def delay(self, max_wait: float = float("inf")) -> float:
        """Reserve the next slot; returns how long the caller must sleep before using it.

        Reserves nothing and raises HourlyCapReached if the hourly cap alone
        would make the wait longer than ``max_wait``.
        """
        with self._lock:
            now = self.clock()
            at = max(now, self._next)
            if self.per_hour:
                while self._hour and self._hour[0] <= at - HOUR:
                    self._hour.popleft()
                if len(self._hour) >= self.per_hour:
                    free = self._hour[0] + HOUR
                    if free - now > max_wait:
                        raise HourlyCapReached(free - now)
                    at = max(at, free)
                self._hour.append(at)
            self._next = at + self.interval
            return at - now

    def wait(self, stop: threading.Event | None = None, max_wait: float = float("inf")) -> bool:
        if not self.interval and not self.per_hour:
            return not (stop is not None and stop.is_set())
        pause = self.delay(max_wait)
        if pause <= 0:
            return not (stop is not None and stop.is_set())
        if stop is None:
            time.sleep(pause)
            return True
        return not stop.wait(pause)


def backoff(attempt: int, base: float, cap: float = 60.0) -> float:
    """Exponential backoff with jitter: between half and all of base·2^(attempt-1), capped."""
    if base <= 0:
        return 0.0
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)
