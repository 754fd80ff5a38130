"""Operator adjustments in the reports (docs/reports.md): a debit adjustment's points leave unredeemed, like
expiry's, so they count in ``expired`` (the breakage figure) and, on their own, in ``adjusted_out``; a credit
adjustment is a network-funded lot, counted in ``issued`` (``issued_by_network``). The figures add up to the
change in outstanding points, through the roll-ups as through the ledger.

Hand-checked: CoffeeCo postpaid, Shop prepaid (1 point = 1 fen, the network keeps 20 % of breakage).
2026-11-20: earns CoffeeCo 500 (lot C), Shop 400 (lot S); burn 100 at CoffeeCo (from C).
2026-11-21: adjustment +100 (network lot N); adjustment -600: C's 400, then S's 200 (earliest expiry first);
            Shop is refunded 200 × 0.8 = 160 fen.
2026-12-15: S expires with 200 left (160 fen refunded again); N (made on 11-21) not yet.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select, update

from shared.ledger.adjustments import adjust_member
from shared.models import Entry, ReportCyclePoints, Transfer
from shared.models.ledger import ENTRY_KINDS
from shared.reports.network import network_report
from shared.reports.partner import partner_report
from shared.reports.period import Period
from shared.reports.render import csv_values, render
from tests.factories import make_member, make_partner
from tests.reports.conftest import TERMS

PREPAID = TERMS | {"billing": "prepaid", "breakage_share": "0.2"}
NOV20, NOV21, DEC15 = date(2026, 11, 20), date(2026, 11, 21), date(2026, 12, 15)
DAYS = Period(NOV20, NOV21)  # the adjustments
MONTH = Period(NOV20, DEC15)  # and Shop's expiry


def _partner_roll_forward(points: dict) -> int:
    """What a partner's period figures say its outstanding points changed by (``expired`` is its breakage,
    debit adjustments included: ``adjusted_out`` is part of it, not to be subtracted again)."""
    return (points["issued"] - points["issue_reversed"] - points["redeemed_here_own_points"]
            - points["redeemed_elsewhere"] - points["expired"])


def _network_roll_forward(totals: dict) -> int:
    return totals["issued"] - totals["issue_reversed"] - totals["redeemed"] - totals["expired"]


@pytest.fixture
def adjusted(network, clock):
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    shop = make_partner(network, "Shop", **PREPAID)
    member = make_member(network, coffee, also_linked_to=(shop,))
    network.earn(coffee, member, "c1", points=500)
    clock.advance(minutes=5)
    network.earn(shop, member, "s1", points=400)
    network.burn(coffee, member, "b1", 100)
    clock.set(datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc))
    network.tx(lambda tx: adjust_member(tx, member, 100, reason="goodwill", request_key="credit"))
    network.tx(lambda tx: adjust_member(tx, member, -600, reason="fraud", request_key="debit"))
    clock.set(datetime(2026, 12, 15, 3, 0, tzinfo=timezone.utc))
    assert network.expire_lots() == 200
    clock.set(datetime(2026, 12, 16, 3, 0, tzinfo=timezone.utc))
    for cycle in (NOV20, NOV21, DEC15):
        network.settle(cycle)
    return {"coffee": coffee, "shop": shop, "member": member}


def _both(network, build) -> dict:
    """The report from the roll-ups, after checking it equals the direct aggregation over the ledger."""
    rolled = network.tx(lambda tx: build(tx, True), readonly=True)
    assert rolled == network.tx(lambda tx: build(tx, False), readonly=True)
    return rolled


def test_debit_adjustments_are_breakage_with_a_figure_of_their_own(network, adjusted):
    coffee, shop = adjusted["coffee"], adjusted["shop"]
    report = _both(network, lambda tx, rollup: partner_report(tx, coffee, DAYS, rollup=rollup))
    assert report["points"] == {
        "issued": 500, "issue_reversed": 0, "redeemed_here": 100, "redeemed_here_own_points": 100,
        "redeemed_here_other_partners_points": 0, "redeemed_here_network_points": 0, "redeemed_elsewhere": 0,
        "expired": 400, "adjusted_out": 400, "network_funded_awarded_here": 0}
    assert report["daily"] == [
        {"cycle_date": "2026-11-20", "issued": 500, "redeemed_here": 100, "redeemed_elsewhere": 0, "expired": 0,
         "adjusted_out": 0},
        {"cycle_date": "2026-11-21", "issued": 0, "redeemed_here": 0, "redeemed_elsewhere": 0, "expired": 400,
         "adjusted_out": 400}]
    assert report["liability"]["outstanding_points"] == 0

    # prepaid: the breakage refund's points are in the breakage figure, for adjustment and expiry alike
    report = _both(network, lambda tx, rollup: partner_report(tx, shop, MONTH, rollup=rollup))
    assert (report["points"]["expired"], report["points"]["adjusted_out"]) == (400, 200)
    assert report["money"]["totals"]["breakage_refunds_received_minor"] == 320  # 400 points × 1 fen × 0.8
    assert sum(day["adjusted_out"] for day in report["daily"]) == 200
    assert sum(day["expired"] for day in report["daily"]) == 400

    analytics = _both(network, lambda tx, rollup: network_report(tx, DAYS, rollup=rollup))
    assert analytics["totals"] == {
        "issued": 1000, "issued_by_partners": 900, "issued_by_network": 100,  # the credit: a network lot
        "issue_reversed": 0, "redeemed": 100, "expired": 600, "adjusted_out": 600,
        "breakage_rate": "0.8571",  # 600 ÷ (100 + 600)
        "active_members": 1}
    assert analytics["daily"][1] == {"cycle_date": "2026-11-21", "issued": 100, "issue_reversed": 0, "redeemed": 0,
                                     "expired": 600, "adjusted_out": 600}
    assert analytics["liability"]["outstanding_points"] == 300  # S's 200 and N's 100 at the end of 11-21


def test_the_figures_explain_the_change_in_outstanding_points(network, adjusted):
    periods = [Period(NOV20, NOV20), Period(NOV21, NOV21), Period(date(2026, 11, 22), DEC15)]
    for rollup in (True, False):
        for partner in (adjusted["coffee"], adjusted["shop"]):
            before = 0
            for period in periods:
                report = network.tx(lambda tx: partner_report(tx, partner, period, rollup=rollup), readonly=True)
                after = report["liability"]["outstanding_points"]
                assert after == before + _partner_roll_forward(report["points"]), (partner, period, report["points"])
                before = after
        before = 0
        for period in periods:
            report = network.tx(lambda tx: network_report(tx, period, rollup=rollup), readonly=True)
            after = report["liability"]["outstanding_points"]
            assert after == before + _network_roll_forward(report["totals"]), (period, report["totals"])
            before = after
        assert before == 100  # the credit adjustment's lot is what the member has left


def test_adjusted_out_in_csv_and_html_in_both_languages(network, adjusted):
    partner = network.tx(lambda tx: partner_report(tx, adjusted["coffee"], DAYS), readonly=True)
    analytics = network.tx(lambda tx: network_report(tx, DAYS), readonly=True)
    values = csv_values(render(partner, "csv"))
    assert values["points.adjusted_out"] == "400" and values["daily.2026-11-21.adjusted_out"] == "400"
    values = csv_values(render(analytics, "csv"))
    assert values["totals.adjusted_out"] == "600" and values["daily.2026-11-21.adjusted_out"] == "600"
    for report, key in ((partner, "points.adjusted_out"), (analytics, "totals.adjusted_out")):
        english, chinese = render(report, "html", "en"), render(report, "html", "zh")
        assert f'data-key="{key}"' in english and 'data-series="adjusted_out"' in english
        assert "removed by operator adjustment" in english and "运营调整扣减" in chinese
        for html in (english, chinese):
            assert key not in html.replace(f'data-key="{key}"', ""), "a figure shown without its label"


def test_breakage_agrees_with_the_ledger_postings(network, adjusted):
    """``expired`` is what members' accounts gave to ``network:expired`` and (debit adjustments) to
    ``network:adjustments``; ``adjusted_out`` the latter alone."""
    def credits(tx, account: str) -> int:
        return int(tx.session.execute(
            select(func.coalesce(func.sum(Transfer.points), 0)).join(Entry, Entry.id == Transfer.entry_id)
            .where(Transfer.credit_account == account, Transfer.debit_account.like("member:%"),
                   Entry.cycle_date.between(MONTH.first, MONTH.last))).scalar_one())

    def check(tx):
        totals = network_report(tx, MONTH)["totals"]
        assert totals["adjusted_out"] == credits(tx, "network:adjustments") == 600
        assert totals["expired"] == credits(tx, "network:expired") + credits(tx, "network:adjustments") == 800
        assert totals["breakage_rate"] == "0.8889"  # 800 ÷ (100 + 800)
        assert sum(partner_report(tx, p, MONTH)["points"]["adjusted_out"]
                   for p in (adjusted["coffee"], adjusted["shop"])) == 600
    network.tx(check, readonly=True)


def test_rollups_written_before_adjusted_out_existed_hold_it_as_other(network, adjusted):
    """Roll-ups written before this version kept debit adjustments under the consumption category ``other``
    (the only lot consumptions no other category took): the reports read those rows as ``adjusted_out``."""
    expected = [network.tx(lambda tx: partner_report(tx, p, MONTH, rollup=False), readonly=True)
                for p in (adjusted["coffee"], adjusted["shop"])]
    expected.append(network.tx(lambda tx: network_report(tx, MONTH, rollup=False), readonly=True))
    points = ReportCyclePoints
    network.tx(lambda tx: tx.session.execute(update(points).where(points.category == "adjusted_out")
                                             .values(category="other")))
    assert network.tx(lambda tx: tx.session.execute(select(points.points).where(points.category == "other"))
                      .scalars().all(), readonly=True)
    rolled = [network.tx(lambda tx: partner_report(tx, p, MONTH), readonly=True)
              for p in (adjusted["coffee"], adjusted["shop"])]
    rolled.append(network.tx(lambda tx: network_report(tx, MONTH), readonly=True))
    assert rolled == expected


def test_every_lot_consumption_has_a_report_category(network, adjusted):
    """The entry kinds whose lot consumptions the reports name: a new kind must be given a category in
    shared/reports/sql.py (and rows of ``other`` in old roll-ups are debit adjustments only while it is)."""
    assert set(ENTRY_KINDS) == {"earn", "bonus", "burn", "hold", "capture", "void", "hold_expiry", "reversal",
                                "expiry", "adjustment"}
    categories = network.tx(lambda tx: set(tx.session.execute(select(ReportCyclePoints.category)).scalars()),
                            readonly=True)
    assert categories == {"issued", "redeemed", "expired", "adjusted_out"}


# The reviewer's checks (tests/_review_rep/test_report_figures.py), as they were written.

def _review_roll_forward(points: dict) -> int:
    """What the period's points figures say the partner's outstanding points changed by."""
    return (points["issued"] - points["issue_reversed"] - points["redeemed_here_own_points"]
            - points["redeemed_elsewhere"] - points["expired"])


def test_partner_points_figures_explain_the_change_in_its_liability(network, clock):
    """docs/reports.md: outstanding = a lot's points less its consumptions; the period's figures are the
    lots and consumptions of its entries. An operator's debit adjustment consumes the partner's lots but
    appears in no figure, so last period's outstanding + this period's movements != this outstanding."""
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    member = make_member(network, coffee)
    network.earn(coffee, member, "e1", points=500)                     # cycle 2026-11-20
    clock.set(datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc))       # cycle 2026-11-21
    network.tx(lambda tx: adjust_member(tx, member, -200, reason="goodwill reversed", request_key="k1"))
    clock.set(datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc))
    for cycle in (date(2026, 11, 20), date(2026, 11, 21)):
        network.settle(cycle)
    first, second = Period.parse("2026-11-20", "2026-11-20"), Period.parse("2026-11-21", "2026-11-21")

    def check(tx):
        for rollup in (True, False):
            before = partner_report(tx, coffee, first, rollup=rollup)["liability"]["outstanding_points"]
            report = partner_report(tx, coffee, second, rollup=rollup)
            after = report["liability"]["outstanding_points"]
            assert (before, after) == (500, 300)
            assert after == before + _review_roll_forward(report["points"]), (
                f"outstanding fell {before}->{after} but the period's points figures are {report['points']}")
    network.tx(check, readonly=True)


def test_prepaid_breakage_refund_money_has_its_points_in_expired(network, clock):
    """A debit adjustment of a prepaid lot pays the issuer a breakage refund (adjustments.py: 'expiry's
    money rules'), which the report shows as breakage_refunds_received_minor, while points.expired (the
    report's breakage) and the network's breakage_rate leave the points out."""
    shop = make_partner(network, "Prepaid", **PREPAID)
    member = make_member(network, shop)
    network.earn(shop, member, "e1", points=500)
    clock.set(datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc))
    network.tx(lambda tx: adjust_member(tx, member, -200, reason="fraud", request_key="k2"))
    clock.set(datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc))
    for cycle in (date(2026, 11, 20), date(2026, 11, 21)):
        network.settle(cycle)
    period = Period.parse("2026-11-21", "2026-11-21")

    def check(tx):
        report = partner_report(tx, shop, period)
        assert report["money"]["totals"]["breakage_refunds_received_minor"] > 0
        assert report["points"]["expired"] > 0, (
            "breakage refunded for points the report does not count as breakage: "
            f"{report['money']['totals']} vs points {report['points']}")
        assert network_report(tx, period)["totals"]["expired"] > 0
    network.tx(check, readonly=True)
