"""Which cycles of a period a report reads from the roll-ups, and which it aggregates live.

A settled cycle's sums are written once into the roll-up tables (shared/reports/rollup.py); a
report sums those rows for its rolled-up cycles and runs the direct aggregation over the ledger
only for the other cycles (the open one, settled ones not rolled up yet). Both halves are given
as ranges of consecutive cycles, so a query reads the ledger's ``cycle_date`` index by range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, false, or_, select

from shared.db.database import Tx
from shared.models import Cycle, ReportRollup, ReportRollupMonth
from shared.reports.period import Period

Ranges = tuple[tuple[date, date], ...]


@dataclass(frozen=True)
class Split:
    rolled: Ranges  # cycles whose sums are in the roll-up tables
    live: Ranges  # cycles aggregated from the ledger
    months: tuple[date, ...] = ()  # rolled-up calendar months wholly in the period (their first days)
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
    if not rollup:
        return Split.direct(period)
    done = set(tx.session.execute(select(ReportRollup.cycle_date).where(
        ReportRollup.cycle_date >= period.first, ReportRollup.cycle_date <= period.last)).scalars())
    months = sorted(month for month in tx.session.execute(select(ReportRollupMonth.month).where(
        ReportRollupMonth.month >= period.first, ReportRollupMonth.month <= period.last)).scalars()
        if Period.month(month.year, month.month).last <= period.last)
    in_months = {(month.year, month.month) for month in months}
    days = period.days
    rolled = [d for d in days if d in done]
    return Split(ranges(rolled), ranges([d for d in days if d not in done]), tuple(months),
                 ranges([d for d in rolled if (d.year, d.month) not in in_months]))


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
