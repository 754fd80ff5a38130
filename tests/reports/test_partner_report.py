"""The hand-checked coalition: every figure of CoffeeCo's report and of the network analytics, worked out
by hand from the events in conftest.py and asserted exactly (the whole report, not a sample).

Lots (points, funder, expires): L1 500 coffee, L2 300 air, L3 200 coffee, L4 100 coffee (2026-11-20,
expire 2026-12-15 10:00 Shanghai); L5 800 coffee (400 base + 400 double-points), L6 50 air (2026-11-21,
expire 2026-12-16); L7 300 coffee (2026-12-15, expires 2027-01-09).
Consumptions: b1 at BookMart L1 500 + L2 100; b2 at BookMart L3 50, its reversal −20; c3r takes L4 100
back; c4 at CoffeeCo L2 150; expiry 2026-12-15: L2 50, L3 170.
"""

from shared.reports.network import network_report
from shared.reports.partner import partner_report
from shared.reports.period import Period

PERIOD = Period.parse("2026-11-20", "2026-12-15")
ACTIVE_DAYS = {"2026-11-20", "2026-11-21", "2026-12-15"}


def daily(days: dict[str, dict], zero: dict) -> list[dict]:
    return [{"cycle_date": day.isoformat()} | days.get(day.isoformat(), zero) for day in PERIOD.days]


def test_coffeeco_report_every_figure(network, coalition):
    c = coalition
    coffee, air, book = c["coffee"], c["air"], c["book"]
    report = network.tx(lambda tx: partner_report(tx, coffee, PERIOD), readonly=True)
    zero = {"issued": 0, "redeemed_here": 0, "redeemed_elsewhere": 0, "expired": 0, "adjusted_out": 0}
    assert report == {
        "report": "partner", "format_version": 1,
        "period": {"from": "2026-11-20", "to": "2026-12-15", "cycles": 26, "timezone": "Asia/Shanghai",
                   "currency": "CNY"},
        "partner": {"id": coffee, "name": "CoffeeCo"},
        "points": {
            "issued": 1900,                       # 500 + 200 + 100 + 800 + 300
            "issue_reversed": 100,                # c3 reversed
            "redeemed_here": 150,                 # c4, all from AirLink's lot
            "redeemed_here_own_points": 0,
            "redeemed_here_other_partners_points": 150,
            "redeemed_here_network_points": 0,
            "redeemed_elsewhere": 530,            # at BookMart: 500 (b1) + 50 − 20 (b2 and its reversal)
            "expired": 170,                       # L3
            "adjusted_out": 0,                    # no operator adjustments
            "network_funded_awarded_here": 0,
        },
        "liability": {
            "as_of": "2026-12-15T16:00:00Z",      # midnight after 2026-12-15 in Shanghai
            "outstanding_points": 1100,           # 1900 − 100 − 530 − 170
            "expiry_schedule": [{"month": "2026-12", "points": 800}, {"month": "2027-01", "points": 300}],
        },
        "flows": {"spent_elsewhere": [{"partner_id": book, "name": "BookMart", "points": 530}],
                  "spent_here": [{"partner_id": air, "name": "AirLink", "points": 150}]},
        "members": {
            "active": 3, "new": 2, "linked": 3, "newly_linked": 3,
            "from_elsewhere": 1,                  # m2, enrolled at BookMart, earned here
            "earning": 3, "repeat_earning": 1, "repeat_purchase_rate": "0.3333",
            "earns": 5, "earn_points": 1900, "points_per_earn": "380.00",
            "earns_with_amount": 5, "purchase_amount_minor": 150000, "average_purchase_amount_minor": "30000",
            # qualifying points (earns net of reversals, all partners; silver from 1,000):
            # m1 500 + 300 + 100 + 800 + 50 − 100 = 1,650 → silver; m2 200, m3 300 → regular
            "tier_mix": {"regular": 2, "silver": 1, "gold": 0, "platinum": 0, "diamond": 0},
            # the activity-status job has not run in this scenario: every member is still "active"
            "status_mix": {"active": 3, "at_risk": 0, "dormant": 0},
        },
        "money": {
            "cycles": [
                {"cycle_date": "2026-11-20", "net_minor": -580, "fees_paid_minor": 80,
                 "reimbursements_paid_minor": 500, "prepaid_funding_paid_minor": 0,
                 "reimbursements_received_minor": 0, "breakage_refunds_received_minor": 0,
                 "payment_date": "2026-11-23", "status": "due"},
                # issuance 800 × 0.1 − 10 (reversal) = 70, redemption fee 7.5 → 8 (half-even, once)
                {"cycle_date": "2026-11-21", "net_minor": 42, "fees_paid_minor": 78,
                 "reimbursements_paid_minor": 30, "prepaid_funding_paid_minor": 0,
                 "reimbursements_received_minor": 150, "breakage_refunds_received_minor": 0,
                 "payment_date": "2026-11-23", "status": "due"},
                {"cycle_date": "2026-12-15", "net_minor": -30, "fees_paid_minor": 30,
                 "reimbursements_paid_minor": 0, "prepaid_funding_paid_minor": 0,
                 "reimbursements_received_minor": 0, "breakage_refunds_received_minor": 0,
                 "payment_date": "2026-12-16", "status": "due"},
            ],
            "totals": {"net_minor": -568, "fees_paid_minor": 188, "reimbursements_paid_minor": 530,
                       "prepaid_funding_paid_minor": 0, "reimbursements_received_minor": 150,
                       "breakage_refunds_received_minor": 0},
            "unsettled_cycles": [],
        },
        "campaigns": [{
            "campaign": f"{coffee}:double", "name": "Double points day", "funded_by": "partner",
            "starts_on": "2026-11-21", "ends_on": "2026-11-21", "campaign_points": 400,
            "during": {"from": "2026-11-21", "to": "2026-11-21", "earns": 1, "points": 800,
                       "purchase_amount_minor": 40000},
            "before": {"from": "2026-11-20", "to": "2026-11-20", "earns": 3, "points": 800,
                       "purchase_amount_minor": 80000},
        }],
        "daily": daily({
            "2026-11-20": {"issued": 800, "redeemed_here": 0, "redeemed_elsewhere": 500, "expired": 0, "adjusted_out": 0},
            "2026-11-21": {"issued": 800, "redeemed_here": 150, "redeemed_elsewhere": 30, "expired": 0, "adjusted_out": 0},
            "2026-12-15": {"issued": 300, "redeemed_here": 0, "redeemed_elsewhere": 0, "expired": 170, "adjusted_out": 0},
        }, zero),
    }


def test_network_analytics_every_figure(network, coalition):
    c = coalition
    coffee, air, book = c["coffee"], c["air"], c["book"]
    report = network.tx(lambda tx: network_report(tx, PERIOD), readonly=True)
    zero = {"issued": 0, "issue_reversed": 0, "redeemed": 0, "expired": 0, "adjusted_out": 0}
    assert report == {
        "report": "network", "format_version": 1,
        "period": {"from": "2026-11-20", "to": "2026-12-15", "cycles": 26, "timezone": "Asia/Shanghai",
                   "currency": "CNY"},
        "totals": {"issued": 2250, "issued_by_partners": 2250, "issued_by_network": 0, "issue_reversed": 100,
                   "redeemed": 780, "expired": 220, "adjusted_out": 0, "breakage_rate": "0.2200", "active_members": 3},
        "liability": {"as_of": "2026-12-15T16:00:00Z", "outstanding_points": 1150,
                      "expiry_schedule": [{"month": "2026-12", "points": 850},
                                          {"month": "2027-01", "points": 300}]},
        "leaderboard": [
            {"partner_id": coffee, "name": "CoffeeCo", "issued": 1900, "redeemed_here": 150,
             "redeemed_elsewhere": 530, "active_members": 3, "net_minor": -568},
            {"partner_id": book, "name": "BookMart", "issued": 0, "redeemed_here": 630, "redeemed_elsewhere": 0,
             "active_members": 2, "net_minor": 598},
            {"partner_id": air, "name": "AirLink", "issued": 350, "redeemed_here": 0, "redeemed_elsewhere": 250,
             "active_members": 1, "net_minor": -285},
        ],
        "flow_matrix": {
            "parties": [{"partner_id": air, "name": "AirLink"}, {"partner_id": book, "name": "BookMart"},
                        {"partner_id": coffee, "name": "CoffeeCo"}],
            "cells": sorted([{"funder": coffee, "redeemer": book, "points": 530},
                             {"funder": air, "redeemer": coffee, "points": 150},
                             {"funder": air, "redeemer": book, "points": 100}],
                            key=lambda cell: (cell["funder"], cell["redeemer"])),
        },
        "network_revenue_minor": 255,             # 140 + 85 + 30
        "unsettled_cycles": [],
        "daily": daily({
            "2026-11-20": {"issued": 1100, "issue_reversed": 0, "redeemed": 600, "expired": 0, "adjusted_out": 0},
            "2026-11-21": {"issued": 850, "issue_reversed": 100, "redeemed": 180, "expired": 0, "adjusted_out": 0},
            "2026-12-15": {"issued": 300, "issue_reversed": 0, "redeemed": 0, "expired": 220, "adjusted_out": 0},
        }, zero),
    }


def test_a_shorter_period_counts_only_its_cycles_and_liability_at_its_cut_off(network, coalition):
    day = Period.parse("2026-11-20", "2026-11-20")
    report = network.tx(lambda tx: partner_report(tx, coalition["coffee"], day), readonly=True)
    assert report["points"]["issued"] == 800
    assert report["points"]["redeemed_elsewhere"] == 500
    # at the end of 2026-11-20: L3 200 and L4 100 left (L1 was spent), all expiring 2026-12-15
    assert report["liability"]["outstanding_points"] == 300
    assert report["liability"]["expiry_schedule"] == [{"month": "2026-12", "points": 300}]
    assert [c["cycle_date"] for c in report["money"]["cycles"]] == ["2026-11-20"]
    assert report["members"]["new"] == 1 and report["members"]["from_elsewhere"] == 1


def test_an_unsettled_cycle_has_no_money_and_is_named(network, clock, coalition):
    network.earn(coalition["coffee"], coalition["m3"], "c8", points=10)   # 2026-12-16, not settled
    report = network.tx(lambda tx: partner_report(tx, coalition["coffee"], Period.parse("2026-12-15", "2026-12-16")),
                        readonly=True)
    assert report["money"]["unsettled_cycles"] == ["2026-12-16"]
    assert [c["cycle_date"] for c in report["money"]["cycles"]] == ["2026-12-15"]
    assert report["points"]["issued"] == 310
