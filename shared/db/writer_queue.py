"""Turns at SQLite's one write lock, first come first served, within a process.

SQLite lets one connection write at a time. A writer that finds the lock taken
sleeps in its busy handler (1, 2, 5, 10 … up to 100 ms) and tries again, so a
job writing back-to-back transactions (settling forty cycles after a restart)
wins nearly every gap between them and a request waiting to write can wait for
the whole run. Writers in this process queue here instead: the one finishing
hands the turn to the longest waiting, at once. Writers in other processes (a
CLI command beside ``serve``) still meet SQLite's busy handler.
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager
from typing import Iterator


class WriterQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()
        self._taken = False
        self._mine = threading.local()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """This thread's turn. A unit that opens another write unit before its own first statement
        (SQLite begins lazily) already has the turn: the inner one goes on within it, as it did
        before there was a queue."""
        depth = getattr(self._mine, "depth", 0)
        if depth == 0:
            self._acquire()
        self._mine.depth = depth + 1
        try:
            yield
        finally:
            self._mine.depth = depth
            if depth == 0:
                self._release()

    def _acquire(self) -> None:
        with self._lock:
            if not self._taken:
                self._taken = True
                return
            baton = threading.Lock()
            baton.acquire()
            self._waiting.append(baton)
        baton.acquire()  # released by the writer handing its turn to this one

    def _release(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().release()  # the turn passes on; the queue stays taken
            else:
                self._taken = False
