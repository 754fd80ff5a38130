"""This API process's own rate-limit counters: a moving window per partner, in memory.

It counts as ``limits``' moving window over its memory storage does (a request is let in while fewer
than the rate's amount were let in during the last period; refused, it learns when the oldest of them
leaves the window), without that storage's cost per request: it starts a timer thread to expire its
entries 10 ms after each hit, so at an API process's rate nearly every request started a thread
(0.39 ms of CPU per hit, about 3 % of a single earn's API CPU; docs/benchmarks.md). Here a key's
expired entries go at its next hit, and keys left idle are dropped every ``SWEEP_EVERY`` hits.

The window counts on the monotonic clock, which a step of the host's wall clock does not move: on the
wall clock, a step back (NTP correcting a clock that ran fast) left the requests let in before it in the
window's future, so a partner that had used its rate was refused for the length of the step (two hours
back: two hours of 429). Only the reset it answers is told in wall-clock time."""

from __future__ import annotations

import threading
import time
from collections import deque

from limits import RateLimitItem


class LocalWindow:
    SWEEP_EVERY = 4096  # hits between two sweeps of the keys no hit has come for in a whole period

    def __init__(self) -> None:
        self.windows: dict[str, deque[float]] = {}  # per key, when each request let in came, oldest first
        self.lock = threading.Lock()  # hit from the event loop and from worker threads (a Redis outage)
        self.hits = 0
        self.longest = 0.0  # the longest period counted: a key idle for that long holds nothing in force

    def hit(self, rate: RateLimitItem, key: str) -> float | None:
        """Count one request: None if it is let in, else when its window resets (epoch seconds)."""
        period = rate.get_expiry()
        with self.lock:
            now = time.monotonic()
            self.hits += 1
            if self.hits % self.SWEEP_EVERY == 0:
                self._sweep(now)
            self.longest = max(self.longest, period)
            window = self.windows.setdefault(key, deque())
            while window and window[0] < now - period:  # as limits: an entry at exactly now - period counts
                window.popleft()
            if len(window) < rate.amount:
                window.append(now)
                return None
            return time.time() + (window[0] + period - now)

    def _sweep(self, now: float) -> None:
        for key in [key for key, window in self.windows.items() if not window or window[-1] < now - self.longest]:
            del self.windows[key]
