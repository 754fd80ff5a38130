"""``pointsnet repair totals``: a kept total that differs from its rows is set to their sum.

A capped campaign's total and an enforced float's drawn amount are kept, not summed (see
test_campaign_totals.py and test_float_drawn.py); ``pointsnet verify`` reports one that drifted.
The repair sums the rows afresh only once the postings that may be adding to them have committed
(PostgreSQL: the campaign's lock, the partner's postings lock; SQLite: the one writer), so a
posting in flight is neither lost nor counted twice.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, update

from shared.access.audit import page
from shared.ledger.journal import Journal
from shared.ledger.kept_totals import Repaired, repair_kept_totals
from shared.ledger.verify import verify
from shared.models import CampaignAward, CampaignTotal, ObligationLine, PartnerLimits
from shared.partners.limits import record_topup, set_limits
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner, verify_ok
from tests.interleave import Pause, overlap

CITY = ("campaigns: [{id: city, name: City day, starts_on: 2026-11-01, ends_on: 2026-11-30, bonus_points: 10, "
        "funded_by: network, campaign_cap: 100000}]")
KEY = "network:city"
PREPAID = dict(billing="prepaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")


def scalar(network, query):
    return network.tx(lambda tx: tx.session.execute(query).scalar_one(), readonly=True)


def campaign_total(network) -> tuple[int, int]:
    """(kept, summed) for the city campaign."""
    return (scalar(network, select(CampaignTotal.points).where(CampaignTotal.campaign == KEY)),
            scalar(network, select(func.sum(CampaignAward.points)).where(CampaignAward.campaign == KEY)))


def float_drawn(network, partner) -> tuple[int, int]:
    """(kept, summed) for the partner's float."""
    return (scalar(network, select(PartnerLimits.float_drawn_micro).where(PartnerLimits.partner_id == partner)),
            scalar(network, select(func.coalesce(func.sum(ObligationLine.amount_micro), 0)).where(
                ObligationLine.payer == partner, ObligationLine.kind == "prepaid_funding")))


def capped_city(network, clock):
    partner = make_partner(network)
    members = [make_member(network, partner) for _ in range(2)]
    network.tx(lambda tx: set_rules(tx, "network", CITY))
    clock.advance(seconds=1)
    network.earn(partner, members[0], "first", amount=1_000)
    return partner, members


def enforced_float(network):
    partner = make_partner(network, **PREPAID)
    member = make_member(network, partner)
    network.tx(lambda tx: record_topup(tx, partner, 100, "BANK-1"))
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=0))
    network.earn(partner, member, "first", points=10)
    return partner, member


def drift(network, partner) -> None:
    network.tx(lambda tx: tx.session.execute(update(CampaignTotal).values(points=999)))
    network.tx(lambda tx: tx.session.execute(
        update(PartnerLimits).where(PartnerLimits.partner_id == partner).values(float_drawn_micro=1)))


def test_repair_sets_drifted_totals_to_their_rows_and_audits_it(network, clock):
    city_shop, _ = capped_city(network, clock)
    prepaid, _ = enforced_float(network)
    assert network.tx(verify, readonly=True).ok
    drift(network, prepaid)
    report = network.tx(verify, readonly=True)
    assert sorted((o.check, o.subject) for o in report.offences) == [
        ("campaign_total_matches_awards", KEY), ("float_drawn_matches_lines", prepaid)]

    assert repair_kept_totals(network) == [Repaired("campaign", KEY, 999, 10),
                                           Repaired("float", prepaid, 1, 10_000_000)]
    assert campaign_total(network) == (10, 10) and float_drawn(network, prepaid) == (10_000_000, 10_000_000)
    verify_ok(network)
    audited, _ = network.tx(lambda tx: page(tx, action="kept_total.repaired"), readonly=True)
    assert sorted(row["target"] for row in audited) == sorted([KEY, prepaid])
    assert repair_kept_totals(network) == []  # nothing left to change, nothing audited
    assert network.tx(lambda tx: page(tx, action="kept_total.repaired"), readonly=True)[1] == 2


def test_a_total_that_matches_is_left_alone(network, clock):
    capped_city(network, clock)
    enforced_float(network)
    assert repair_kept_totals(network) == []
    assert network.tx(lambda tx: page(tx, action="kept_total.repaired"), readonly=True)[1] == 0


def test_repairing_a_campaign_waits_for_the_earn_in_flight(network, clock, monkeypatch):
    """The earn has written its award (and, on PostgreSQL, the trigger has added it to the row) but not
    committed: a repair that summed now would miss the award and then overwrite the row with a sum
    short by it. It waits for the campaign's lock instead."""
    partner, members = capped_city(network, clock)
    drift(network, partner)
    pause = Pause().after(monkeypatch, Journal, "flush")
    both = overlap(lambda: network.earn(partner, members[1], "in-flight", amount=1_000),
                   lambda: repair_kept_totals(network), pause)
    assert both.second_waited and both.first["points"] > 0
    assert both.second == [Repaired("campaign", KEY, 999 + 10, 20)]
    assert campaign_total(network) == (20, 20)
    verify_ok(network)


def test_repairing_a_float_waits_for_the_posting_in_flight(network, monkeypatch):
    """A reversal gives float back without locking the float for issuance; once its lines are written
    the kept row is locked until it commits (PostgreSQL's trigger added them), and the repair, which
    locks the row before summing, waits for it."""
    partner, _ = enforced_float(network)
    network.tx(lambda tx: tx.session.execute(update(PartnerLimits).values(float_drawn_micro=1)))
    pause = Pause().after(monkeypatch, Journal, "flush")
    both = overlap(lambda: network.reverse(partner, "undo", "first"),
                   lambda: repair_kept_totals(network), pause)
    assert both.second_waited and both.first["points"] == 10
    assert both.second == [Repaired("float", partner, 1 - 10_000_000, 0)]
    assert float_drawn(network, partner) == (0, 0)
    verify_ok(network)


@pytest.mark.postgres
def test_repairing_a_campaign_counts_an_award_of_the_previous_release_in_flight(network, clock):
    """A process of the previous release takes no campaign lock, but once it has written an award the
    trigger has added it to the row, which it holds locked until it commits: the repair locks the row
    before summing, so it waits and counts the award."""
    partner, members = capped_city(network, clock)
    entry_id = network.earn(partner, members[1], "second", amount=1_000)["entry_id"]
    drift(network, partner)
    pause = Pause()

    def previous_release_award(tx):
        tx.session.execute(insert(CampaignAward), [{"id": "cmp_previous_release", "campaign": KEY,
                                                    "member_id": members[1], "entry_id": entry_id, "points": 7}])
        pause()

    both = overlap(lambda: network.tx(previous_release_award), lambda: repair_kept_totals(network), pause)
    assert both.second_waited
    assert both.second == [Repaired("campaign", KEY, 999 + 7, 27)]
    assert campaign_total(network) == (27, 27)
