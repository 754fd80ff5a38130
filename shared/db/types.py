"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
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


def new_id(prefix: str) -> str:
    """A writer-made id: sortable by creation (ms) with 64 random bits behind."""
    # os.urandom is what secrets.token_hex draws from, without its three calls in between
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{os.urandom(8).hex()}"


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` ids of ``new_id``'s form made at once: one clock reading and one draw of random
    bytes for all (a million ``new_id`` calls cost seconds, mostly one random draw each)."""
    stamp = f"{prefix}_{time.time_ns() // 1_000_000:012x}"
    random = secrets.token_hex(8 * count)
    return [stamp + random[start:start + 16] for start in range(0, 16 * count, 16)]
