"""Report roll-ups are written once, with the settlement of their cycle, and cycles settled before
roll-ups existed are caught up by the reports job (the equivalence of both paths for random traffic
is tests/reports/test_rollup_properties.py)."""

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from shared.ledger.cycles import cycle_date_for
from shared.models import (
    ReportCycleCampaigns, ReportCycleEarns, ReportCycleLines, ReportCycleMembers, ReportCyclePoints, ReportMonthMembers,
    ReportRollup, ReportRollupMonth,
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
        for table in (ReportRollup, *ROLLUP_TABLES, ReportRollupMonth, ReportMonthMembers)},
        readonly=True)


def test_a_cycle_is_rolled_up_once_with_its_settlement(network, coalition):
    rows = count_rows(network)
    assert rows["report_rollups"] == 3 and all(rows.values())
    assert rows["report_rollup_months"] == 1  # November is over and both its cycles are settled; December is not
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
               Period.parse("2026-11-01", "2026-12-31")]
    partners = [coalition["coffee"], coalition["book"]]
    expected = [reports(network, partners, period, rollup=False) for period in periods]

    def same() -> bool:
        return [reports(network, partners, period, rollup=True) for period in periods] == expected

    def forget(tx):  # as if NOV20 and NOV21 had been settled before roll-ups existed
        tx.session.execute(delete(ReportMonthMembers))
        tx.session.execute(delete(ReportRollupMonth))
        for table in ROLLUP_TABLES:
            tx.session.execute(delete(table).where(table.cycle_date.in_([NOV20, NOV21])))
        tx.session.execute(delete(ReportRollup).where(ReportRollup.cycle_date.in_([NOV20, NOV21])))
    network.tx(forget)
    assert same()
    assert roll_up_settled(network, limit=1) == ["2026-11-20"]
    assert count_rows(network)["report_rollup_months"] == 0  # November is not complete yet
    assert same()
    assert roll_up_settled(network) == ["2026-11-21"]
    assert count_rows(network)["report_rollup_months"] == 1
    assert roll_up_settled(network) == []
    assert same()
