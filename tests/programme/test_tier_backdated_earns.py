"""An earn counts toward qualifying points by its occurred_at, at posting as in the sum: one backdated
(POINTSNET_OCCURRED_AT_WINDOW_HOURS reaching further back than the tier window) to before the window
counts for nothing — it neither upgrades the member nor changes the sum — on the single path, in a
batch and as an activity award; a reversal in the same unit of such an earn takes nothing off. One
backdated to inside the window still counts."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.config import Settings
from shared.ledger.events import Event
from shared.models import MemberTierHistory
from shared.programme.tiers import tier_view, window_start
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner, verify_ok
from tests.programme.conftest import LADDER


@pytest.fixture
def settings(tmp_path) -> Settings:
    # occurred_at may lie 400 days back, further than the 12-month tier window; points that never expire,
    # so that a backdated earn can still be reversed
    return Settings(data_dir=Path(tmp_path) / "data", tiers=LADDER, expiry_policy="never",
                    occurred_at_window_hours=24 * 400)


def view(network, member):
    return network.tx(lambda tx: tier_view(tx, member), readonly=True)


def history(network, member):
    rows = network.tx(lambda tx: tx.session.execute(
        select(MemberTierHistory).where(MemberTierHistory.member_id == member)
        .order_by(MemberTierHistory.at, MemberTierHistory.id)).scalars().all(), readonly=True)
    return [(row.from_tier, row.to_tier, row.reason, row.qualifying_points, row.entry_id) for row in rows]


def start(network):
    return network.tx(lambda tx: window_start(tx.settings, tx.now), readonly=True)


def test_an_earn_that_occurred_before_the_window_does_not_upgrade(network, clock):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "in", points=60)
    network.earn(partner, member, "old", points=150, occurred_at=clock.now() - timedelta(days=380))
    seen = view(network, member)
    assert (seen["tier"], seen["qualifying_points"]) == ("regular", 60)
    assert history(network, member) == []
    crossing = network.earn(partner, member, "new", points=40)  # 60 + 40: the backdated 150 add nothing
    assert history(network, member) == [("regular", "silver", "qualified", 100, crossing["entry_id"])]
    seen = view(network, member)
    assert (seen["tier"], seen["qualifying_points"]) == ("silver", 100)
    verify_ok(network)


def test_the_window_starts_exactly_at_its_start(network, clock):
    """As the sum counts it: an earn that occurred at the window's start counts, a moment before does not."""
    partner = make_partner(network)
    member, other = make_member(network, partner), make_member(network, partner)
    since = start(network)
    network.earn(partner, other, "before", points=100, occurred_at=since - timedelta(microseconds=1))
    network.earn(partner, member, "at", points=100, occurred_at=since)
    assert (view(network, other)["tier"], view(network, other)["qualifying_points"]) == ("regular", 0)
    assert (view(network, member)["tier"], view(network, member)["qualifying_points"]) == ("silver", 100)


def test_an_earn_backdated_to_inside_the_window_still_counts(network, clock):
    partner = make_partner(network)
    member = make_member(network, partner)
    earn = network.earn(partner, member, "inside", points=150, occurred_at=clock.now() - timedelta(days=300))
    assert history(network, member) == [("regular", "silver", "qualified", 150, earn["entry_id"])]
    assert view(network, member)["qualifying_points"] == 150


def test_in_a_batch_a_backdated_earn_neither_upgrades_nor_raises_the_next_earns_tier(network, clock):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1\ntier_multipliers: {silver: 2}"))
    old, new = network.post(partner, [
        Event("earn", "old", member, points=150, occurred_at=clock.now() - timedelta(days=380)),
        Event("earn", "new", member, amount=5_000)])
    assert isinstance(old, dict) and isinstance(new, dict), (old, new)
    assert [(line["rule"], line["points"]) for line in new["breakdown"]] == [("base_rate", 50)]
    seen = view(network, member)
    assert (seen["tier"], seen["qualifying_points"]) == ("regular", 50)
    assert history(network, member) == []
    # a batch whose earn in the window crosses the threshold upgrades at that earn, with the window's points
    _, crossing = network.post(partner, [
        Event("earn", "old-2", member, points=500, occurred_at=clock.now() - timedelta(days=390)),
        Event("earn", "new-2", member, points=50)])
    assert history(network, member) == [("regular", "silver", "qualified", 100, crossing["entry_id"])]
    verify_ok(network)


def test_a_backdated_activity_award_from_before_the_window_does_not_upgrade(network, clock):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1\nactivities:\n  survey: {points: 150}\n"))
    network.activity(partner, member, "survey", "s-old", occurred_at=clock.now() - timedelta(days=380))
    seen = view(network, member)
    assert (seen["tier"], seen["qualifying_points"]) == ("regular", 0)
    assert history(network, member) == []
    award = network.activity(partner, member, "survey", "s-new", occurred_at=clock.now() - timedelta(days=30))
    assert history(network, member) == [("regular", "silver", "qualified", 150, award["entry_id"])]


def test_reversing_a_backdated_earn_in_the_same_batch_takes_nothing_off(network, clock):
    """The earn from before the window added nothing, so its reversal in the same unit takes nothing
    back: the earn after them crosses the threshold on its own points, as it would alone."""
    partner = make_partner(network)
    member = make_member(network, partner)
    outcomes = network.post(partner, [
        Event("earn", "old", member, points=120, occurred_at=clock.now() - timedelta(days=380)),
        Event("reversal", "return-old", original_reference="old"),
        Event("earn", "new", member, points=100)])
    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    assert history(network, member) == [("regular", "silver", "qualified", 100, outcomes[2]["entry_id"])]
    seen = view(network, member)
    assert (seen["tier"], seen["qualifying_points"]) == ("silver", 100)
    verify_ok(network)


def test_reversing_a_backdated_earn_in_a_later_batch_takes_nothing_off(network, clock):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "old", points=120, occurred_at=clock.now() - timedelta(days=380))
    clock.advance(days=1)
    outcomes = network.post(partner, [Event("reversal", "return-old", original_reference="old"),
                                      Event("earn", "new", member, points=100)])
    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    assert history(network, member) == [("regular", "silver", "qualified", 100, outcomes[1]["entry_id"])]
