"""Report roll-ups are written once, with the settlement of their cycle, and cycles settled before
roll-ups existed are caught up by the reports job (the equivalence of both paths for random traffic
is tests/reports/test_rollup_properties.py)."""

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from shared.ledger.cycles import cycle_date_for
from shared.models import (
    ReportCycleCampaigns, ReportCycleEarns, ReportCycleLines, ReportCycleMembers, ReportCyclePoints, ReportMonthMembers,
    ReportRollup,
)
from shared.reports.delivery import roll_up_settled
from shared.reports.period import Period
from shared.reports.rollup import CycleNotSettled, roll_up_cycle
from tests.factories import make_member, make_partner
from tests.reports.conftest import NOV20, NOV21, TERMS
from tests.reports.test_rollup_properties import reports

ROLLUP_TABLES = (ReportCyclePoints, ReportCycleEarns, ReportCycleMembers, ReportCycleLines, ReportCycleCampaigns)


def count_rows(network) -> dict[str, int]:
    return network.tx(lambda tx: {table.__tablename__: tx.session.execute(
        select(func.count()).select_from(table)).scalar_one()
        for table in (ReportRollup, *ROLLUP_TABLES, ReportMonthMembers)},
        readonly=True)


def month_members(network) -> dict[tuple, tuple[int, int]]:
    table = ReportMonthMembers
    return network.tx(lambda tx: {(p, m.isoformat(), mem): (int(t), int(e)) for p, m, mem, t, e in tx.session.execute(
        select(table.partner_id, table.month, table.member_id, table.transactions, table.earns))}, readonly=True)


def summed_cycle_members(network) -> dict[tuple, tuple[int, int]]:
    """``report_cycle_members`` of the rolled-up cycles summed per month, in Python."""
    table = ReportCycleMembers
    rows = network.tx(lambda tx: tx.session.execute(
        select(table.partner_id, table.cycle_date, table.member_id, table.transactions, table.earns)).all(),
        readonly=True)
    sums: dict[tuple, tuple[int, int]] = {}
    for partner, cycle, member, transactions, earns in rows:
        key = (partner, cycle.replace(day=1).isoformat(), member)
        before = sums.get(key, (0, 0))
        sums[key] = (before[0] + int(transactions), before[1] + int(earns))
    return sums


def test_a_cycle_is_rolled_up_once_with_its_settlement(network, coalition):
    rows = count_rows(network)
    assert rows["report_rollups"] == 3 and all(rows.values())
    months = month_members(network)
    assert months == summed_cycle_members(network)
    # m1 at CoffeeCo in November: earns c1, c3 and c5 and the burn c4 (a reversal is no transaction)
    assert months[(coalition["coffee"], "2026-11-01", coalition["m1"])] == (4, 3)
    assert months[(coalition["coffee"], "2026-12-01", coalition["m3"])] == (1, 1)
    assert network.settle(NOV20)["already_settled"]  # settling again changes nothing
    assert not network.tx(lambda tx: roll_up_cycle(tx, NOV20))  # nor does rolling up again
    assert count_rows(network) == rows


def test_only_a_settled_cycle_is_rolled_up(network, clock):
    partner = make_partner(network, "Open", **TERMS)
    network.earn(partner, make_member(network, partner), "e1", points=10)
    today = cycle_date_for(clock.now(), network.settings)
    with pytest.raises(CycleNotSettled):
        network.tx(lambda tx: roll_up_cycle(tx, today))
    assert count_rows(network)["report_rollups"] == 0


def test_cycles_settled_before_rollups_are_caught_up_by_the_reports_job(network, coalition):
    periods = [Period(NOV21, NOV21 + timedelta(days=30)), Period.month(2026, 11),
               Period.parse("2026-11-01", "2026-12-31"), Period.parse("2026-12-01", "2026-12-16")]
    partners = [coalition["coffee"], coalition["book"]]
    expected = [reports(network, partners, period, rollup=False) for period in periods]

    def same() -> bool:
        return [reports(network, partners, period, rollup=True) for period in periods] == expected

    def forget(tx):  # as if NOV20 and NOV21 had been settled before roll-ups existed
        tx.session.execute(delete(ReportMonthMembers).where(ReportMonthMembers.month == NOV20.replace(day=1)))
        for table in ROLLUP_TABLES:
            tx.session.execute(delete(table).where(table.cycle_date.in_([NOV20, NOV21])))
        tx.session.execute(delete(ReportRollup).where(ReportRollup.cycle_date.in_([NOV20, NOV21])))
    network.tx(forget)
    assert same()
    assert roll_up_settled(network, limit=1) == ["2026-11-20"]
    assert month_members(network) == summed_cycle_members(network)  # November's members so far: NOV20's
    assert same()
    assert roll_up_settled(network) == ["2026-11-21"]
    assert month_members(network) == summed_cycle_members(network)
    assert roll_up_settled(network) == []
    assert same()
