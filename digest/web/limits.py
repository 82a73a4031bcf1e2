"""Abuse limits of the web app: at most N events per key in any window, counted in this process.

Each ``digest serve`` process counts on its own (a restart forgets), so with
several web processes a client gets up to N per process: the limits blunt a
bot (list-bombing through /subscribe, guessing the admin token), they are no
quota. Keys are client addresses as uvicorn sees them (behind a proxy it
trusts, the ``X-Forwarded-For`` address).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

MAX_KEYS = 10_000  # past this many keys, those with no event in the window are forgotten


class WindowLimit:
    """At most ``limit`` events per key in any ``window`` seconds (0 = no limit)."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.events: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self.events.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may have another event, or None if it may now."""
        if not self.limit:
            return None
        with self.lock:
            now = self.clock()
            times = self._recent(key, now)
            if len(times) < self.limit:
                return None
            return max(1, math.ceil(times[0] + self.window - now))

    def hit(self, key: str) -> None:
        """Count an event for ``key``."""
        if not self.limit:
            return
        with self.lock:
            now = self.clock()
            self._recent(key, now).append(now)
            if len(self.events) > MAX_KEYS:
                for stale in [k for k, t in self.events.items() if not self._recent(k, now)]:
                    del self.events[stale]

    def clear(self, key: str) -> None:
        """Forget ``key``'s events (a successful login)."""
        with self.lock:
            self.events.pop(key, None)
