"""A report's period: a closed range of cycles (business days in the network time zone)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shared.clock import parse_date
from shared.config import Settings
from shared.errors import ValidationFailed
from shared.ledger.cycles import cycle_end

MAX_DAYS = 400
EARLIEST, LATEST = date(2000, 1, 1), date(8999, 12, 31)


class InvalidPeriod(ValidationFailed):
    code, title = "invalid_period", "The report period is not valid"


@dataclass(frozen=True)
class Period:
    first: date  # first cycle, included
    last: date  # last cycle, included

    @classmethod
    def parse(cls, first: str | date | None, last: str | date | None) -> "Period":
        """Both ends given as YYYY-MM-DD, ``first`` not after ``last``, at most MAX_DAYS cycles."""
        try:
            start = first if isinstance(first, date) else parse_date(str(first))
            end = last if isinstance(last, date) else parse_date(str(last))
        except ValueError:
            raise InvalidPeriod(f"from and to are cycle dates YYYY-MM-DD, not {first!r} and {last!r}") from None
        if start < EARLIEST or end > LATEST:
            raise InvalidPeriod(f"report periods lie between {EARLIEST} and {LATEST}")
        if end < start:
            raise InvalidPeriod(f"the period ends ({end}) before it starts ({start})")
        if (end - start).days + 1 > MAX_DAYS:
            raise InvalidPeriod(f"a report covers at most {MAX_DAYS} cycles")
        return cls(start, end)

    @classmethod
    def month(cls, year: int, month: int) -> "Period":
        first = date(year, month, 1)
        following = date(year + month // 12, month % 12 + 1, 1)
        return cls(first, following - timedelta(days=1))

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def starts_at(self, settings: Settings) -> datetime:
        """The instant the first cycle begins (UTC)."""
        return cycle_end(self.first - timedelta(days=1), settings)

    def ends_at(self, settings: Settings) -> datetime:
        """The instant the last cycle ends: the cut-off the report is "as of" (UTC)."""
        return cycle_end(self.last, settings)

    @classmethod
    def clamped(cls, first: date, last: date) -> "Period":
        """``first`` … ``last`` cut to EARLIEST … LATEST, where every report period lies (a campaign may
        be written as running to 9999-12-31: its window must not reach the end of the calendar)."""
        return cls(max(first, EARLIEST), min(last, LATEST))

    def before(self) -> "Period":
        """The same number of cycles just before this period (campaign baselines), from EARLIEST at the
        earliest (empty for a period that starts there)."""
        length = timedelta(days=(self.last - self.first).days + 1)
        return Period(self.first - min(length, self.first - EARLIEST), self.first - timedelta(days=1))

    def json(self) -> dict:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "cycles": len(self.days)}
