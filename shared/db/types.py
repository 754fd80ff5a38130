"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import array
import os
import sys
import threading
import time
from datetime import datetime, timezone

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Stored as naive UTC on every database, returned as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text from a textual query
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc)


FAR_FUTURE = datetime(9999, 12, 31, tzinfo=timezone.utc)


# Ids are monotonic within a process (as ULID's monotonic mode): an id made in the millisecond of
# the one before it (or earlier, the clock having gone back) takes that id's 64-bit suffix plus one
# instead of fresh random bits, so ids made later in a process sort later. The ledger relies on it:
# lots of one unit of work share their issue time and expiry, and the id breaks the tie, oldest
# first (shared/ledger/rules.py). Ids of different processes stay unique (each millisecond of each
# process starts at a random suffix) but are ordered only by their millisecond. Ids are not secrets:
# anything that must be unguessable (tokens, nonces, keys) is drawn from ``secrets`` directly.
_SUFFIXES = 1 << 64
_lock = threading.Lock()
_last = [0, -1]  # this process's last id: [millisecond, suffix]; [0, -1] before the first


def _reserve(count: int) -> tuple[int, int]:
    """The millisecond and first suffix of the next ``count`` ids of this process (``count`` >= 1)."""
    now = time.time_ns() // 1_000_000
    with _lock:
        last = _last
        ms, suffix = last[0], last[1] + 1
        if now > ms:
            ms, suffix = now, int.from_bytes(os.urandom(8), "big")
        while suffix + count > _SUFFIXES:  # the suffix would overflow: the next millisecond, drawn anew
            ms, suffix = ms + 1, int.from_bytes(os.urandom(8), "big")
        last[0], last[1] = ms, suffix + count - 1
    return ms, suffix


def _forget_after_fork() -> None:
    """A forked child must not continue its parent's sequence (both would make the same ids)."""
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    _last[:] = [0, -1]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def new_id(prefix: str) -> str:
    """A writer-made id: sortable by creation (ms), then by creation within this process (the
    64-bit suffix behind, random at each new millisecond, counts up within one)."""
    ms, suffix = _reserve(1)
    return f"{prefix}_{ms:012x}{suffix:016x}"


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` ids of ``new_id``'s form made at once, in creation order: one clock reading and at
    most one draw of random bytes for all (a million ``new_id`` calls cost seconds)."""
    if count <= 0:
        return []
    ms, first = _reserve(count)
    stamp = f"{prefix}_{ms:012x}"
    suffixes = array.array("Q", range(first, first + count))  # 8 bytes each, hex'ed at once
    if sys.byteorder == "little":
        suffixes.byteswap()
    digits = suffixes.tobytes().hex()
    return [stamp + digits[start:start + 16] for start in range(0, 16 * count, 16)]
