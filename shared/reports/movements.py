"""Points movements from lots and lot consumptions, summed in the database.

Every point enters the ledger in a lot (an earn, a bonus or an operator's credit adjustment) and
leaves it through a lot consumption: a redemption (burn, capture; their reversals give points
back), an earn reversal, expiry, or an operator's debit adjustment. Summing those two tables by
cycle, category, funder and redeemer gives every points figure of the reports, and they add up:
outstanding at the end of a period is what lots received minus what consumptions took, up to that
period's last cycle. Points that leave unredeemed — expired or taken by a debit adjustment, whose
money follows expiry's rule — are the reports' breakage (``breakage``/``per_cycle_breakage``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, func, or_, select, union_all
from sqlalchemy.orm import aliased

from shared.db.database import Tx
from shared.models import Entry, Lot, LotConsumption, ReportCyclePoints
from shared.reports.period import Period
from shared.reports.split import Ranges, split, within
from shared.reports.sql import ADJUSTED_OUT, LEGACY_CATEGORIES, NETWORK, const, movement_category

ISSUED = "issued"  # the roll-up category of lots created (the others are consumption categories)
BREAKAGE = ("expired", ADJUSTED_OUT)  # consumption categories of points that leave unredeemed
SCHEDULE_MONTHS = 24


@dataclass
class Movements:
    """Sums of one period: issued[(cycle, funder, issuing partner)], moved[(cycle, category, funder, redeemer)]."""

    issued: dict[tuple, int] = field(default_factory=dict)
    moved: dict[tuple, int] = field(default_factory=dict)

    def _rows(self, table: str):
        names = ("cycle", "funder", "partner") if table == "issued" else ("cycle", "category", "funder", "redeemer")
        return names, (self.issued if table == "issued" else self.moved)

    def total(self, table: str, **match) -> int:
        """The sum of the rows whose named parts equal ``match`` (e.g. ``category="expired", funder=p``)."""
        names, rows = self._rows(table)
        where = [(names.index(name), value) for name, value in match.items()]
        return sum(points for key, points in rows.items() if all(key[i] == value for i, value in where))

    def per_cycle(self, table: str, **match) -> dict:
        """cycle -> the sum of the rows matching ``match``, in one pass (for the daily series)."""
        names, rows = self._rows(table)
        where = [(names.index(name), value) for name, value in match.items()]
        sums: dict = {}
        for key, points in rows.items():
            if all(key[i] == value for i, value in where):
                sums[key[0]] = sums.get(key[0], 0) + points
        return sums

    def breakage(self, **match) -> int:
        """Points that left unredeemed (``BREAKAGE``: expired or taken by a debit adjustment)."""
        return sum(self.total("moved", category=category, **match) for category in BREAKAGE)

    def per_cycle_breakage(self, **match) -> dict:
        sums: dict = {}
        for category in BREAKAGE:
            for cycle, points in self.per_cycle("moved", category=category, **match).items():
                sums[cycle] = sums.get(cycle, 0) + points
        return sums


def _funder(lot):
    return func.coalesce(lot.funder_partner_id, const(NETWORK))


def movements(tx: Tx, period: Period, partner_id: str | None = None, *, by_cycle: bool = True,
              by_party: bool = True, rollup: bool = True) -> Movements:
    """Issued lots and lot consumptions of the period, grouped: the roll-ups of its rolled-up cycles
    plus a live aggregation of the others (``rollup=False``: everything live).

    With ``partner_id``: only rows where the partner funded the lot or the entry happened there.
    """
    parts = split(tx, period, rollup)
    result = Movements()
    if parts.rolled:
        _rolled(tx, parts.rolled, partner_id, by_cycle, by_party, result)
    if parts.live:
        _live(tx, parts.live, partner_id, by_cycle, by_party, result)
    return result


def _add(rows: dict, key: tuple, points: int) -> None:
    rows[key] = rows.get(key, 0) + points


def _rolled(tx: Tx, spans: Ranges, partner_id: str | None, by_cycle: bool, by_party: bool,
            result: Movements) -> None:
    """The roll-up rows of the cycles in ``spans``, folded to the grouping asked for (a category of roll-ups
    written by an earlier version read as it is named now: ``LEGACY_CATEGORIES``)."""
    rollup = ReportCyclePoints
    where = [within(rollup.cycle_date, spans)]
    if partner_id is not None:
        where.append(or_(rollup.funder == partner_id, rollup.party == partner_id))
    for c, category, f, p, points in tx.session.execute(
            select(rollup.cycle_date, rollup.category, rollup.funder, rollup.party, rollup.points).where(*where)):
        c = c if by_cycle else "*"
        f, p = (f, p) if by_party else ("*", "*")
        if category == ISSUED:
            _add(result.issued, (c, f, p), int(points))
        else:
            _add(result.moved, (c, LEGACY_CATEGORIES.get(category, category), f, p), int(points))


def live_queries(spans: Ranges, partner_id: str | None = None, *, by_cycle: bool = True,
                 by_party: bool = True) -> tuple[Select, Select]:
    """The direct aggregation over lots and lot consumptions of the entries of the cycles in ``spans``:
    (cycle, funder, issuing partner, points) and (cycle, category, funder, redeemer, points). The reports
    read them; a cycle's roll-up inserts them as they are (INSERT … SELECT)."""
    lot, entry, lc = aliased(Lot), aliased(Entry), aliased(LotConsumption)
    original = aliased(Entry)
    cycle = entry.cycle_date if by_cycle else const("*")
    funder = _funder(lot) if by_party else const("*")
    where = [within(entry.cycle_date, spans)]
    if partner_id is not None:
        where.append(or_(lot.funder_partner_id == partner_id, entry.partner_id == partner_id))
    issuing = func.coalesce(entry.partner_id, const(NETWORK)) if by_party else const("*")
    inner = (select(cycle.label("cycle"), funder.label("funder"), issuing.label("partner"), lot.points.label("points"))
             .select_from(lot).join(entry, entry.id == lot.entry_id).where(*where).subquery())
    issued = (select(inner.c.cycle, inner.c.funder, inner.c.partner, func.sum(inner.c.points))
              .group_by(inner.c.cycle, inner.c.funder, inner.c.partner))
    redeemer = func.coalesce(entry.partner_id, const(NETWORK)) if by_party else const("*")
    inner = (select(cycle.label("cycle"), movement_category(entry, original).label("category"),
                    funder.label("funder"), redeemer.label("redeemer"), lc.points.label("points"))
             .select_from(lc).join(entry, entry.id == lc.entry_id).join(lot, lot.id == lc.lot_id)
             .outerjoin(original, original.id == entry.original_entry_id).where(*where).subquery())
    moved = (select(inner.c.cycle, inner.c.category, inner.c.funder, inner.c.redeemer, func.sum(inner.c.points))
             .group_by(inner.c.cycle, inner.c.category, inner.c.funder, inner.c.redeemer))
    return issued, moved


def _live(tx: Tx, spans: Ranges, partner_id: str | None, by_cycle: bool, by_party: bool,
          result: Movements) -> None:
    issued, moved = live_queries(spans, partner_id, by_cycle=by_cycle, by_party=by_party)
    for c, f, p, points in tx.session.execute(issued):
        _add(result.issued, (_day(c), f, p), int(points))
    for c, category, f, r, points in tx.session.execute(moved):
        _add(result.moved, (_day(c), category, f, r), int(points))


def _day(value) -> date | str:
    if isinstance(value, str) and value != "*":
        return date.fromisoformat(value)
    return value


def month_boundaries(after: datetime, zone: ZoneInfo, months: int = SCHEDULE_MONTHS) -> list[tuple[str, datetime]]:
    """(label, exclusive end) of each calendar month (network time zone) from the one holding ``after``."""
    local = after.astimezone(zone)
    year, month = local.year, local.month
    bounds = []
    for _ in range(months):
        label = f"{year:04d}-{month:02d}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        bounds.append((label, datetime(year, month, 1, tzinfo=zone)))
    return bounds


def liability(tx: Tx, period: Period, funder_partner_id: str | None = None) -> dict:
    """Points outstanding at the end of the period and the months they expire in.

    A lot counts with what it had left at the period's cut-off. That is computed from the
    present, so the cost follows the partner's open lots and what happened after the
    period, not its whole history: what lots have left now, plus what consumptions after
    the last cycle took from them, less lots created after the last cycle. For a partner,
    only lots it funded and had not bought out by the cut-off; for the network (no partner),
    every lot, bought out or not, so that it equals the members' balances. Expiry months are
    in the network time zone, each the month of the last instant a lot's points can be used (a lot
    expiring at midnight on the 1st counts in the month before); ``due`` holds points past their expiry
    date that the expiry job had not expired yet at the cut-off, ``later`` what expires after the
    schedule's last month (or never).
    """
    end = period.ends_at(tx.settings)
    lot, entry, lc = aliased(Lot), aliased(Entry), aliased(LotConsumption)
    counted = []
    if funder_partner_id is not None:  # the network's figure counts every lot: the members' balances
        counted = [lot.funder_partner_id == funder_partner_id,
                   or_(lot.bought_out_at.is_(None), lot.bought_out_at > end)]
    bounds = month_boundaries(end, tx.settings.zone)
    bucket = case((lot.expires_at <= end, const("due")),
                  # the month of the last instant its points can be used, as a reminder dates it: a lot of an
                  # end-of-month policy expires at midnight starting the next month, and counts in this one
                  *[(lot.expires_at <= until, const(label)) for label, until in bounds],
                  else_=const("later")).label("bucket")
    left_now = select(bucket, lot.remaining.label("points")).where(*counted, lot.remaining > 0)
    taken_since = (select(bucket, lc.points.label("points")).select_from(lc)
                   .join(entry, entry.id == lc.entry_id).join(lot, lot.id == lc.lot_id)
                   .where(entry.cycle_date > period.last, *counted))
    created_since = (select(bucket, (-lot.points).label("points")).select_from(lot)
                     .join(entry, entry.id == lot.entry_id).where(entry.cycle_date > period.last, *counted))
    parts = union_all(left_now, taken_since, created_since).subquery()
    sums = {b: int(points) for b, points in tx.session.execute(
        select(parts.c.bucket, func.sum(parts.c.points)).group_by(parts.c.bucket))}
    order = ["due"] + [label for label, _ in bounds] + ["later"]
    schedule = [{"month": label, "points": sums[label]} for label in order if sums.get(label)]
    return {"as_of": end.isoformat().replace("+00:00", "Z"), "outstanding_points": sum(sums.values()),
            "expiry_schedule": schedule}
