"""Daily limits of a member who absorbed a duplicate the same day: the duplicate's earns and spends count.

A merge moves what the duplicate still has to the survivor (balance, lots, holds), but its entries
stay with it as history. The person is one: what it earned and spent today under the duplicate's id
counts toward the survivor's daily limits, or a merge would give a second allowance the same day.
"""

from __future__ import annotations

import pytest

from shared.errors import UnknownMember, VelocityLimitExceeded
from shared.ledger.events import Event
from shared.programme.merge import merge_members
from tests.db.test_history_plans import captured, plan
from tests.factories import make_member, make_partner, verify_ok
from tests.programme_limits.conftest import rules


def merge(network, survivor, duplicate):
    return network.tx(lambda tx: merge_members(tx, survivor, duplicate))


@pytest.fixture
def people(network):
    coffee, books = make_partner(network, "Coffee"), make_partner(network, "Books")
    survivor = make_member(network, coffee, also_linked_to=(books,))
    duplicate = make_member(network, books)
    return coffee, books, survivor, duplicate


def test_the_duplicates_earns_of_the_day_count_toward_the_survivors_earn_limit(network, limits, people):
    coffee, books, survivor, duplicate = people
    limits(member_daily_earn=1_000)
    network.earn(coffee, survivor, "s-1", points=300)
    network.earn(books, duplicate, "d-1", points=600)
    merge(network, survivor, duplicate)
    with pytest.raises(VelocityLimitExceeded) as refused:
        network.earn(coffee, survivor, "s-2", points=101)
    assert (refused.value.extra["used"], refused.value.extra["remaining"]) == (900, 100)
    # a batch naming the merged-away id and the survivor's: nothing posts to the old id (it is not read
    # as the survivor, counted apart from the survivor's day), and the survivor's earns and activities
    # are counted with the duplicate's
    rules(network, books, "activities:\n  check-in: {points: 101}\n")
    outcomes = network.post(books, [Event("earn", "b-d-1", duplicate, points=1),
                                    Event("activity", "b-d-2", duplicate, activity="check-in"),
                                    Event("activity", "b-s-1", survivor, activity="check-in"),
                                    Event("earn", "b-s-2", survivor, points=101)])
    assert [type(outcome) for outcome in outcomes] == [UnknownMember, UnknownMember, VelocityLimitExceeded,
                                                        VelocityLimitExceeded]
    assert [outcome.extra["used"] for outcome in outcomes[2:]] == [900, 900]
    network.earn(books, survivor, "s-3", points=100)  # exactly up to the limit
    assert network.balance(survivor)["available"] == 1_000
    verify_ok(network)


def test_the_duplicates_spends_of_the_day_count_toward_the_survivors_burn_limit(network, limits, people, clock):
    coffee, books, survivor, duplicate = people
    network.earn(coffee, survivor, "s-seed", points=1_000)
    network.earn(books, duplicate, "d-seed", points=1_000)
    clock.advance(days=1)  # the earns are yesterday's; the limit is on spending
    limits(member_daily_burn=500)
    network.burn(books, duplicate, "d-b", 200)
    network.hold(books, duplicate, "d-h", 100)  # a hold moves with the merge: counted once
    network.burn(coffee, survivor, "s-b", 100)
    merge(network, survivor, duplicate)
    with pytest.raises(VelocityLimitExceeded) as refused:
        network.burn(coffee, survivor, "s-b2", 101)
    assert refused.value.extra["used"] == 400
    network.burn(coffee, survivor, "s-b3", 100)
    verify_ok(network)


def test_the_duplicates_earlier_days_do_not_count(network, limits, people, clock):
    coffee, books, survivor, duplicate = people
    limits(member_daily_earn=1_000)
    network.earn(books, duplicate, "d-1", points=900)
    clock.advance(days=1)
    merge(network, survivor, duplicate)
    network.earn(coffee, survivor, "s-1", points=1_000)


def test_a_duplicate_of_the_duplicate_counts_too(network, limits, people):
    coffee, books, survivor, duplicate = people
    limits(member_daily_earn=1_000)
    older = make_member(network, books)
    network.earn(books, older, "o-1", points=400)
    merge(network, duplicate, older)  # the older record first merged into the duplicate...
    network.earn(books, duplicate, "d-1", points=400)
    merge(network, survivor, duplicate)  # ...then the duplicate into the survivor
    with pytest.raises(VelocityLimitExceeded) as refused:
        network.earn(coffee, survivor, "s-1", points=201)
    assert refused.value.extra["used"] == 800


def test_a_member_never_merged_into_costs_no_extra_statement(network, limits, people):
    """The duplicates' entries are read in the statement that reads the member's own."""
    coffee, _, survivor, _ = people
    limits(member_daily_earn=1_000, member_daily_burn=1_000)
    network.earn(coffee, survivor, "seed", points=10)
    with captured(network, "sum(entries.points)") as sent:
        network.earn(coffee, survivor, "e-1", points=10)
        network.burn(coffee, survivor, "b-1", 5)
    assert len(sent) == 2, sent  # the day's earns, the day's burns: one statement each


def test_the_duplicates_are_found_through_the_index_of_merged_members(network, limits, people):
    coffee, books, survivor, duplicate = people
    limits(member_daily_earn=1_000)
    network.earn(books, duplicate, "d-1", points=10)
    merge(network, survivor, duplicate)
    with captured(network, "sum(entries.points)") as sent:
        network.earn(coffee, survivor, "s-1", points=10)
    [(statement, parameters)] = sent
    used = plan(network, statement, parameters)
    assert "ix_members_merged_into" in used and "ix_entries_member_posted" in used, used
