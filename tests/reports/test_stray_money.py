"""The money figures of reports count the network's cycles only, from its first cycle on
(``runs.of_the_network``), as ``clearing list`` and the runs list: a settlement of an earlier day (a
"stray" one an earlier release made: a typo run by hand) is in no partner's money, no net by party,
and an open ``cycles`` row of such a day (an older merge, erasure or buy-out left it) is no unsettled
cycle of the period."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import delete, insert

from shared.models import Cycle, Settlement
from shared.reports.money import money, net_by_party, unsettled_cycles
from shared.reports.period import Period
from shared.settlement import runs
from tests.factories import make_member, make_partner

CYCLE = date(2026, 11, 20)  # the clock's first day: the network's first cycle
STRAY, OPEN_STRAY = date(2026, 11, 17), date(2026, 11, 18)
TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
PERIOD = Period(STRAY, CYCLE)


def test_a_stray_settlement_and_open_row_are_not_in_the_money_figures(network, clock, monkeypatch):
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    network.earn(coffee, make_member(network, coffee), "c1", points=500)
    clock.advance(days=1)
    with monkeypatch.context() as old_release:  # what `clearing run --cycle 2026-11-17` did before
        old_release.setattr(runs, "first_cycle", lambda tx: STRAY)
        network.settle(STRAY)

    def older_release(tx):  # a stray settlement with money (normally 0), and an open row of a day before
        tx.session.execute(delete(Settlement).where(Settlement.cycle_date == STRAY))  # the stray run's, at 0
        tx.session.execute(insert(Settlement.__table__), [
            {"cycle_date": STRAY, "party": party, "net_minor": net, "from_float_minor": 0,
             "payment_date": STRAY + timedelta(days=1), "status": "due"}
            for party, net in ((coffee, -7), ("network", 7))])
        tx.session.execute(insert(Cycle.__table__).values(cycle_date=OPEN_STRAY, status="open"))
    network.tx(older_release)
    network.settle(CYCLE)

    report = network.tx(lambda tx: money(tx, coffee, PERIOD), readonly=True)
    assert [row["cycle_date"] for row in report["cycles"]] == [CYCLE.isoformat()]
    assert report["totals"]["net_minor"] == -50 and report["totals"]["fees_paid_minor"] == 50
    assert report["unsettled_cycles"] == []
    assert network.tx(lambda tx: net_by_party(tx, PERIOD), readonly=True) == {coffee: -50, "network": 50}
    assert network.tx(lambda tx: unsettled_cycles(tx, PERIOD), readonly=True) == []
