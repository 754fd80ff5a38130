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

PATIENCE_S = 60.0  # as long as SQLite's busy timeout: a writer waits this long for its turn, then gives up


class TurnTimeout(TimeoutError):
    """The writer waited its patience for a turn; the transaction runner retries it like a busy database."""


class WriterQueue:
    def __init__(self, patience_s: float = PATIENCE_S) -> None:
        self.patience_s = patience_s
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
        try:
            self._mine.depth = depth + 1
            yield
        finally:
            self._mine.depth = depth
            if depth == 0:
                self._release()

    @property
    def free(self) -> bool:
        with self._lock:
            return not self._taken

    def _acquire(self) -> None:
        with self._lock:
            if not self._taken:
                self._taken = True
                return
            baton = threading.Lock()
            baton.acquire()
            self._waiting.append(baton)
        try:
            if baton.acquire(timeout=self.patience_s):  # released by the writer handing its turn on
                return
        except BaseException:  # interrupted while waiting: leave the queue, or pass on a turn handed over
            if not self._left(baton):
                self._release()
            raise
        if self._left(baton):
            raise TurnTimeout(f"waited {self.patience_s:g} s for a turn at the database's write lock")
        # handed over in the instant after the wait ran out: the turn is this writer's

    def _left(self, baton: threading.Lock) -> bool:
        """Leave the queue; False if the turn had been handed to this writer already."""
        with self._lock:
            if baton in self._waiting:
                self._waiting.remove(baton)
                return True
            return False

    def _release(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().release()  # the turn passes on; the queue stays taken
            else:
                self._taken = False
