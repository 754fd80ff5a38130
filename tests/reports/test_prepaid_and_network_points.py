"""A prepaid partner, a network-funded campaign, a hold captured across three funders, prepaid breakage.

Mart is prepaid (1 point = 1 fen, issuance fee 0.1 fen, redemption fee 5 %, the network keeps 20 % of
expired prepaid value); Cafe is postpaid with the same values. The network gives 50 bonus points on
earns from amounts on 2026-11-20 ("launch").

2026-11-20: Cafe earn 10,000 fen → Cafe lot 100 + network lot 50. Mart earn 200 points → prepaid lot 200.
Mart holds 160 and captures them: Cafe's 100, the network's 50, 10 of its own.
2026-12-15: Mart's lot expires with 190 left: 190 fen of value, 152 refunded to Mart.
"""

import json
from datetime import datetime, timezone

import pytest

from shared.reports.network import network_report
from shared.reports.partner import partner_report
from shared.reports.period import Period
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner
from tests.reports.conftest import NOV20, TERMS

PERIOD = Period.parse("2026-11-20", "2026-12-15")
LAUNCH = {"campaigns": [{"id": "launch", "name": "Launch bonus", "starts_on": "2026-11-20", "ends_on": "2026-11-20",
                         "bonus_points": 50, "funded_by": "network"}]}


@pytest.fixture
def shops(network, clock):
    cafe = make_partner(network, "Cafe", **TERMS)
    mart = make_partner(network, "Mart", **(TERMS | {"billing": "prepaid", "breakage_share": "0.2"}))
    network.tx(lambda tx: set_rules(tx, "network", json.dumps(LAUNCH)))
    member = make_member(network, cafe, also_linked_to=(mart,))
    network.earn(cafe, member, "cafe-1", amount=10000)
    clock.advance(minutes=10)
    network.earn(mart, member, "mart-1", points=200)
    clock.advance(minutes=10)
    hold = network.hold(mart, member, "mart-hold", 160)["hold_id"]
    network.capture(mart, hold, reference="mart-capture")
    clock.set(datetime(2026, 12, 15, 3, 0, tzinfo=timezone.utc))
    assert network.expire_lots() == 190
    clock.set(datetime(2026, 12, 16, 3, 0, tzinfo=timezone.utc))
    network.settle(NOV20)
    network.settle(PERIOD.last)
    return {"cafe": cafe, "mart": mart, "member": member}


def test_prepaid_partner_figures(network, shops):
    cafe, mart = shops["cafe"], shops["mart"]
    report = network.tx(lambda tx: partner_report(tx, mart, PERIOD), readonly=True)
    assert report["points"] == {
        "issued": 200, "issue_reversed": 0, "redeemed_here": 160, "redeemed_here_own_points": 10,
        "redeemed_here_other_partners_points": 100, "redeemed_here_network_points": 50, "redeemed_elsewhere": 0,
        "expired": 190, "adjusted_out": 0, "network_funded_awarded_here": 0}
    assert report["flows"]["spent_here"] == [{"partner_id": cafe, "name": "Cafe", "points": 100},
                                             {"partner_id": "network", "name": "network", "points": 50}]
    assert report["liability"]["outstanding_points"] == 0 and report["liability"]["expiry_schedule"] == []
    assert report["money"]["cycles"] == [
        # fees: issuance 20 + redemption fee 5 + 2.5 = 7.5 → 8 (one rounding per payer, payee, kind)
        {"cycle_date": "2026-11-20", "net_minor": -78, "fees_paid_minor": 28, "reimbursements_paid_minor": 0,
         "prepaid_funding_paid_minor": 200, "reimbursements_received_minor": 150,
         "breakage_refunds_received_minor": 0, "payment_date": "2026-11-23", "status": "due"},
        {"cycle_date": "2026-12-15", "net_minor": 152, "fees_paid_minor": 0, "reimbursements_paid_minor": 0,
         "prepaid_funding_paid_minor": 0, "reimbursements_received_minor": 0,
         "breakage_refunds_received_minor": 152, "payment_date": "2026-12-16", "status": "due"}]
    assert report["members"]["active"] == 1 and report["members"]["earns_with_amount"] == 0
    assert report["members"]["average_purchase_amount_minor"] is None
    assert report["campaigns"] == [{
        "campaign": "network:launch", "name": "Launch bonus", "funded_by": "network", "starts_on": "2026-11-20",
        "ends_on": "2026-11-20", "campaign_points": 0,
        "during": {"from": "2026-11-20", "to": "2026-11-20", "earns": 1, "points": 200, "purchase_amount_minor": 0},
        "before": {"from": "2026-11-19", "to": "2026-11-19", "earns": 0, "points": 0, "purchase_amount_minor": 0}}]


def test_network_campaign_points_at_the_partner_that_earned_them(network, shops):
    cafe, mart = shops["cafe"], shops["mart"]
    report = network.tx(lambda tx: partner_report(tx, cafe, PERIOD), readonly=True)
    assert report["points"]["issued"] == 100 and report["points"]["network_funded_awarded_here"] == 50
    assert report["points"]["redeemed_elsewhere"] == 100
    assert report["members"]["earn_points"] == 150 and report["members"]["points_per_earn"] == "150.00"
    assert report["members"]["new"] == 1 and report["members"]["from_elsewhere"] == 0
    [launch] = report["campaigns"]
    assert launch["campaign_points"] == 50 and launch["during"]["purchase_amount_minor"] == 10000
    assert report["money"]["cycles"][0]["net_minor"] == -110        # redemption 100 + issuance fee 10
    analytics = network.tx(lambda tx: network_report(tx, PERIOD), readonly=True)
    assert analytics["totals"] == {"issued": 350, "issued_by_partners": 300, "issued_by_network": 50,
                                   "issue_reversed": 0, "redeemed": 160, "expired": 190, "adjusted_out": 0,
                                   "breakage_rate": "0.5429", "active_members": 1}
    assert {(c["funder"], c["redeemer"]): c["points"] for c in analytics["flow_matrix"]["cells"]} == {
        (cafe, mart): 100, ("network", mart): 50, (mart, mart): 10}
    assert analytics["network_revenue_minor"] == 188 - 152          # fees and prepaid funding, less the refund
