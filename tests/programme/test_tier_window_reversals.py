"""Reversing an earn in a batch costs qualifying points only if the earn occurred in the window,
as the sum in the database counts it: a later earn of the same batch upgrades as it would alone."""

from datetime import timedelta
from pathlib import Path

import pytest

from shared.config import Settings
from shared.ledger.events import Event
from shared.programme.tiers import current_tier
from tests.conftest import START
from tests.factories import make_member, make_partner, verify_ok
from tests.programme.conftest import LADDER


@pytest.fixture
def settings(tmp_path) -> Settings:
    # points that never expire, so an earn from before the window can still be reversed
    return Settings(data_dir=Path(tmp_path) / "data", tiers=LADDER, expiry_policy="never")


def tier(network, member):
    return network.tx(lambda tx: current_tier(tx, member), readonly=True)


def return_and_buy(network, partner, member):
    outcomes = network.post(partner, [Event("reversal", "return-old", original_reference="old"),
                                      Event("earn", "new", member, points=100)])
    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes


def test_reversing_an_earn_posted_before_the_window_in_a_batch_costs_nothing(network, clock):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "old", points=80)
    clock.advance(days=400)
    return_and_buy(network, partner, member)
    assert tier(network, member) == "silver"
    verify_ok(network)


def test_an_earn_posted_in_the_window_that_occurred_before_it_is_judged_by_when_it_occurred(network, clock):
    """Posted inside the window but occurred (the partner's time) 72 hours earlier, outside it."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "old", points=80, occurred_at=START - timedelta(hours=72))
    clock.set(START.replace(year=START.year + 1) - timedelta(hours=1))  # the window starts an hour before START
    return_and_buy(network, partner, member)
    assert tier(network, member) == "silver"


def test_reversing_an_earn_in_the_window_in_a_batch_still_costs_its_points(network, clock):
    partner = make_partner(network)
    member, other = make_member(network, partner), make_member(network, partner)
    # occurred an hour after the window's start, a year later: it still qualifies, so its reversal counts
    network.earn(partner, member, "old", points=80, occurred_at=START - timedelta(hours=1))
    network.earn(partner, other, "other-old", points=60)
    clock.set(START.replace(year=START.year + 1) - timedelta(hours=2))
    outcomes = network.post(partner, [Event("reversal", "return-old", original_reference="old"),
                                      Event("earn", "new", member, points=90),
                                      Event("reversal", "return-other", original_reference="other-old"),
                                      Event("earn", "other-new", other, points=60)])
    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    assert tier(network, member) == "regular"  # 80 - 80 + 90
    assert tier(network, other) == "regular"  # 60 - 60 + 60
    verify_ok(network)
