"""Writing a settled cycle's report roll-ups, once, in the settlement's unit of work.

A settled cycle is closed, so its entries, lots, lot consumptions, obligation lines and campaign
awards never change: their sums can be written once and read by every later report
(shared/reports/split.py decides which cycles a report reads from here). The sums are made by the
same aggregation code the reports run live, restricted to the one cycle, so both paths give the
same figures (tests/reports/test_rollup.py checks it for random traffic). The ``report_rollups``
row is keyed on the cycle: a second roll-up of a cycle cannot commit. Each cycle's members are
also added to its calendar month's, per member (``report_month_members``), so the distinct-member
figures of a month, over or still running, read one row per member.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import case, func, insert, literal, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.db.database import Tx
from shared.errors import Conflict
from shared.models import (
    CampaignAward, Cycle, Entry, ObligationLine, ReportCycleCampaigns, ReportCycleEarns, ReportCycleLines,
    ReportCycleMembers, ReportCyclePoints, ReportMonthMembers, ReportRollup, SettlementRun,
)
from shared.reports.movements import ISSUED, live_queries
from shared.reports.sql import CARRY, NETWORK, TRANSACTION_KINDS, const, exact_sum, exact_total, purchase_amount


class CycleNotSettled(Conflict):
    code, title = "cycle_not_settled", "Only a settled cycle can be rolled up"


def roll_up_cycle(tx: Tx, cycle: date) -> bool:
    """Write the cycle's roll-ups unless they exist. The cycle must be settled. True if written."""
    if tx.is_postgres:  # the settlement's lock on the cycle: one roll-up at a time, whoever starts it
        tx.session.execute(text("SELECT pg_advisory_xact_lock(7242003, :d)"), {"d": cycle.toordinal()})
    if tx.session.execute(select(ReportRollup.cycle_date).where(ReportRollup.cycle_date == cycle)).first():
        return False
    settled = tx.session.execute(select(Cycle.status).join(SettlementRun, SettlementRun.cycle_date == Cycle.cycle_date)
                                 .where(Cycle.cycle_date == cycle)).scalar_one_or_none()
    if settled != "closed":  # an open cycle can still change: its sums would go stale
        raise CycleNotSettled(f"cycle {cycle} is not settled; its report roll-ups are written when it is")
    _write(tx, cycle)
    return True


def roll_up_settling(tx: Tx, cycle: date) -> None:
    """The roll-ups of a cycle being settled in this unit: closed, under the settlement's lock (taken by
    the settler), and settled when this unit commits; it writes them while the statements are written."""
    status = tx.session.execute(select(Cycle.status).where(Cycle.cycle_date == cycle)).scalar_one_or_none()
    if status != "closed":
        raise CycleNotSettled(f"cycle {cycle} is not closed; its report roll-ups are written when it is settled")
    if not tx.session.execute(select(ReportRollup.cycle_date).where(ReportRollup.cycle_date == cycle)).first():
        _write(tx, cycle)


def _write(tx: Tx, cycle: date) -> None:
    tx.session.execute(insert(ReportRollup.__table__).values(cycle_date=cycle, rolled_up_at=tx.now))
    _points(tx, cycle)
    _earns(tx, cycle)
    _members(tx, cycle)
    _lines(tx, cycle)
    _campaigns(tx, cycle)
    _month(tx, cycle)


def _insert(tx: Tx, table, rows: list[dict]) -> None:
    if rows:
        tx.session.execute(insert(table.__table__), rows)


def _points(tx: Tx, cycle: date) -> None:
    """The cycle's points movements, as the reports aggregate them live: INSERT … SELECT, never through
    Python (at 10 million lines, 150,000-odd rows held as dicts grew the settlement by 100s of MB)."""
    issued, moved = live_queries(((cycle, cycle),))
    issued = issued.subquery()
    tx.session.execute(insert(ReportCyclePoints.__table__).from_select(
        ["cycle_date", "category", "funder", "party", "points"],
        select(literal(cycle), const(ISSUED), *list(issued.c)[1:])))
    moved = moved.subquery()
    tx.session.execute(insert(ReportCyclePoints.__table__).from_select(
        ["cycle_date", "category", "funder", "party", "points"], select(literal(cycle), *list(moved.c)[1:])))


def _earns(tx: Tx, cycle: date) -> None:
    amount = purchase_amount(tx)
    rows = tx.session.execute(
        select(Entry.partner_id, func.count(), func.coalesce(func.sum(Entry.points), 0), func.count(amount),
               *exact_sum(tx, amount))
        .where(Entry.cycle_date == cycle, Entry.kind == "earn", Entry.partner_id.is_not(None))
        .group_by(Entry.partner_id))
    _insert(tx, ReportCycleEarns, [
        {"cycle_date": cycle, "partner_id": partner, "earns": int(earns), "points": int(points),
         "earns_with_amount": int(with_amount)} | carried(exact_total(tx, amounts) or 0)
        for partner, earns, points, with_amount, *amounts in rows])


def carried(total: int) -> dict:
    """A sum of purchase amounts (0 or more) as the roll-up keeps it: carry × 2^62 + minor."""
    carry, minor = divmod(total, CARRY)
    return {"purchase_amount_carry": carry, "purchase_amount_minor": minor}


def _members(tx: Tx, cycle: date) -> None:
    """One row per (partner, member) who transacted in the cycle: INSERT … SELECT, never through Python."""
    partner = func.coalesce(Entry.partner_id, const(NETWORK))
    per_member = (select(partner, literal(cycle), Entry.member_id, func.count(),
                         func.sum(case((Entry.kind == "earn", 1), else_=0)))
                  .where(Entry.cycle_date == cycle, Entry.kind.in_(TRANSACTION_KINDS), Entry.member_id.is_not(None))
                  .group_by(partner, Entry.member_id))
    tx.session.execute(insert(ReportCycleMembers.__table__).from_select(
        ["partner_id", "cycle_date", "member_id", "transactions", "earns"], per_member))


LINES_PER_INSERT = 10_000


def _lines(tx: Tx, cycle: date) -> None:
    """The cycle's exact sums per (payer, payee, kind). Each fits 64 bits (settlement refuses a cycle
    where one does not, ``cycle_sum_too_large``), but the running sum may pass 2^63 on the way: on
    PostgreSQL INSERT … SELECT (its sum of a bigint is exact); on SQLite, whose integer SUM fails
    then, ``sql.exact_sum``'s two halves put together in Python and inserted a batch at a time."""
    line = ObligationLine
    if tx.is_postgres:
        tx.session.execute(insert(ReportCycleLines.__table__).from_select(
            ["cycle_date", "payer", "payee", "kind", "amount_micro"],
            select(literal(cycle), line.payer, line.payee, line.kind, func.sum(line.amount_micro))
            .where(line.cycle_date == cycle).group_by(line.payer, line.payee, line.kind)))
        return
    rows = tx.session.execute(select(line.payer, line.payee, line.kind, *exact_sum(tx, line.amount_micro))
                              .where(line.cycle_date == cycle).group_by(line.payer, line.payee, line.kind)).all()
    for start in range(0, len(rows), LINES_PER_INSERT):
        _insert(tx, ReportCycleLines, [{"cycle_date": cycle, "payer": payer, "payee": payee, "kind": kind,
                                        "amount_micro": exact_total(tx, figures)}
                                       for payer, payee, kind, *figures in rows[start:start + LINES_PER_INSERT]])


def _campaigns(tx: Tx, cycle: date) -> None:
    rows = tx.session.execute(
        select(Entry.partner_id, CampaignAward.campaign, func.sum(CampaignAward.points))
        .join(Entry, Entry.id == CampaignAward.entry_id)
        .where(Entry.cycle_date == cycle, Entry.partner_id.is_not(None))
        .group_by(Entry.partner_id, CampaignAward.campaign))
    _insert(tx, ReportCycleCampaigns, [{"cycle_date": cycle, "partner_id": partner, "campaign": campaign,
                                        "points": int(points)} for partner, campaign, points in rows])


def _month(tx: Tx, cycle: date) -> None:
    """Add the cycle's members to its month's: ``report_month_members`` holds, per partner and
    member, the sum over the month's rolled-up cycles (shared/reports/split.py reads it for a
    period that holds all of them, a month to date as well as a month that is over)."""
    month = cycle.replace(day=1)
    if tx.is_postgres:  # one roll-up per month at a time: two never upsert the same rows in turn
        tx.session.execute(text("SELECT pg_advisory_xact_lock(7242005, :m)"), {"m": month.toordinal()})
    upsert = postgresql_insert if tx.is_postgres else sqlite_insert
    days, table = ReportCycleMembers, ReportMonthMembers.__table__
    statement = upsert(table).from_select(
        ["partner_id", "month", "member_id", "transactions", "earns"],
        select(days.partner_id, literal(month), days.member_id, days.transactions, days.earns)
        .where(days.cycle_date == cycle))
    tx.session.execute(statement.on_conflict_do_update(
        index_elements=[table.c.partner_id, table.c.month, table.c.member_id],
        set_={"transactions": table.c.transactions + statement.excluded.transactions,
              "earns": table.c.earns + statement.excluded.earns}))


def due_for_rollup(tx: Tx, limit: int | None = None) -> list[date]:
    """Settled cycles without roll-ups (settled before roll-ups existed), oldest first."""
    query = (select(SettlementRun.cycle_date).where(SettlementRun.cycle_date.not_in(select(ReportRollup.cycle_date)))
             .order_by(SettlementRun.cycle_date))
    return list(tx.session.execute(query if limit is None else query.limit(limit)).scalars())
