"""Which cycles of a period a report reads from the roll-ups, and which it aggregates live.

A settled cycle's sums are written once into the roll-up tables (shared/reports/rollup.py); a
report sums those rows for its rolled-up cycles and runs the direct aggregation over the ledger
only for the other cycles (the open one, settled ones not rolled up yet). Both halves are given
as ranges of consecutive cycles, so a query reads the ledger's ``cycle_date`` index by range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, false, or_, select

from shared.db.database import Tx
from shared.models import Cycle, ReportRollup
from shared.reports.period import Period

Ranges = tuple[tuple[date, date], ...]


@dataclass(frozen=True)
class Split:
    rolled: Ranges  # cycles whose sums are in the roll-up tables
    live: Ranges  # cycles aggregated from the ledger
    months: tuple[date, ...] = ()  # months (first days) all of whose rolled-up cycles are in the period
    rolled_days: Ranges = ()  # the rolled-up cycles outside those months

    @classmethod
    def direct(cls, period: Period) -> "Split":
        """Everything live: the reference the roll-ups are tested against."""
        return cls((), ((period.first, period.last),))


def ranges(days: list[date]) -> Ranges:
    """Sorted days as ranges of consecutive days."""
    found: list[tuple[date, date]] = []
    for day in sorted(days):
        if found and (day - found[-1][1]).days == 1:
            found[-1] = (found[-1][0], day)
        else:
            found.append((day, day))
    return tuple(found)


def split(tx: Tx, period: Period, rollup: bool = True) -> Split:
    """A month's member rows hold all its rolled-up cycles (shared/reports/rollup.py), so the
    period reads them for a month only when it holds every one of those cycles: a month that is
    over, or a month to date whose earlier cycles are settled.

    The set of rolled-up cycles and the roll-up rows must be read in one snapshot: read-only
    units are (REPEATABLE READ on PostgreSQL, one read transaction on SQLite).
    """
    if not rollup:
        return Split.direct(period)
    around = Period(period.first.replace(day=1), Period.month(period.last.year, period.last.month).last)
    done = set(tx.session.execute(select(ReportRollup.cycle_date).where(
        ReportRollup.cycle_date >= around.first, ReportRollup.cycle_date <= around.last)).scalars())
    by_month: dict[date, list[date]] = {}
    for day in done:
        by_month.setdefault(day.replace(day=1), []).append(day)
    months = sorted(month for month, days in by_month.items() if period.first <= min(days) and max(days) <= period.last)
    # from the rolled-up cycles, not period.days: a campaign's window may span thousands of years
    rolled = sorted(d for d in done if period.first <= d <= period.last)
    spans = ranges(rolled)
    return Split(spans, gaps(period, spans), tuple(months),
                 ranges([d for d in rolled if d.replace(day=1) not in months]))


def gaps(period: Period, spans: Ranges) -> Ranges:
    """The cycles of the period outside the sorted, disjoint ``spans`` (which lie in it), as ranges."""
    found: list[tuple[date, date]] = []
    start = period.first
    for first, last in spans:
        if first > start:
            found.append((start, first - timedelta(days=1)))
        start = last + timedelta(days=1)
    if start <= period.last:
        found.append((start, period.last))
    return tuple(found)


def within(column, spans: Ranges):
    """``column`` lies in one of the ranges (false for none)."""
    if not spans:
        return false()
    return or_(*[column == first if first == last else and_(column >= first, column <= last)
                 for first, last in spans])


def unrolled(tx: Tx) -> Ranges:
    """Every cycle of the ledger not rolled up yet (for sums over all history, like campaign awards)."""
    return ranges(list(tx.session.execute(select(Cycle.cycle_date).where(
        Cycle.cycle_date.not_in(select(ReportRollup.cycle_date)))).scalars()))
