"""The one source of network time: system clock in production, fixed or simulated elsewhere."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    """A clock that only moves when told to: tests, drills and the demo's simulated past."""

    def __init__(self, instant: datetime):
        self._now = as_utc(instant)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = as_utc(instant)

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: network times must carry a time zone")
    return value.astimezone(timezone.utc)


def parse_instant(text: str) -> datetime:
    """Parse an RFC 3339 instant (a trailing Z is accepted)."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return as_utc(value)


def clock_from_settings(fixed: str | None) -> Clock:
    return FixedClock(parse_instant(fixed)) if fixed else SystemClock()
