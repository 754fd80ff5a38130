"""The one source of network time: system clock in production, fixed or simulated elsewhere."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
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


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)  # only this: fromisoformat also takes 20261101, 2026-W45-1
# RFC 3339 exactly: seconds and an offset always, fractions allowed. datetime.fromisoformat alone
# also takes 20261201T000000Z, week dates, no seconds, +0800 and a space for the T; an offset's
# minutes are 00-59 (fromisoformat reads +08:60 as +09:00).
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:[0-5]\d)", re.ASCII | re.IGNORECASE)


def parse_date(text: str) -> date:
    """A date people typed (a form, a command's option, a report period, a rules document): exactly
    YYYY-MM-DD; ValueError for anything else."""
    if not ISO_DATE.fullmatch(text):
        raise ValueError(f"not a date YYYY-MM-DD: {text!r}")
    return date.fromisoformat(text)


def parse_rfc3339(text: str) -> datetime:
    """An instant people typed (a form, a command's option): RFC 3339 with seconds and its offset,
    e.g. 2026-12-01T00:00:00+08:00 or ...Z, in UTC; ValueError for anything else (a day or time
    that does not exist, 2026-02-30 or 24:00:00, included, and an instant whose UTC time is before
    year 1 or after year 9999)."""
    if not RFC3339.fullmatch(text):
        raise ValueError(f"not an RFC 3339 instant with its offset: {text!r}")
    try:
        return as_utc(datetime.fromisoformat(text.upper().replace("Z", "+00:00")))
    except OverflowError:
        raise ValueError(f"{text!r} is beyond the calendar in UTC (years 1 to 9999)") from None


def clock_from_settings(fixed: str | None) -> Clock:
    """POINTSNET_CLOCK read as documented, RFC 3339 with its offset: fromisoformat alone took 2026-W47-5, a time
    without seconds, and an offset of +08:60 (read as +09:00, the drill's clock an hour off)."""
    return FixedClock(parse_rfc3339(fixed.strip())) if fixed else SystemClock()
