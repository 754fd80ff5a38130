"""Merging a duplicate member into a survivor: points, lots, holds, links and history move; the ledger verifies."""

import pytest
from sqlalchemy import select

from shared.errors import UnknownMember, ValidationFailed
from shared.ledger.queries import member_balance
from shared.models import MemberLink, MemberMerge, MemberTierHistory
from shared.programme.merge import merge_members
from shared.programme.summary import member_summary
from shared.programme.tiers import current_tier
from tests.factories import make_member, make_partner, verify_ok


@pytest.fixture
def pair(network):
    coffee, books = make_partner(network, "Coffee"), make_partner(network, "Books")
    survivor = make_member(network, coffee)
    duplicate = make_member(network, coffee, also_linked_to=(books,))
    network.earn(coffee, survivor, "s-1", points=200)
    network.earn(books, duplicate, "d-1", points=450)
    network.earn(coffee, duplicate, "d-2", points=100)  # 550: gold on the small ladder
    hold = network.hold(books, duplicate, "d-h", points=50)
    return coffee, books, survivor, duplicate, hold["hold_id"]


def merge(network, survivor, duplicate, **kw):
    return network.tx(lambda tx: merge_members(tx, survivor, duplicate, **kw))


def links(network, member):
    return set(network.tx(lambda tx: tx.session.execute(
        select(MemberLink.partner_id).where(MemberLink.member_id == member)).scalars().all(), readonly=True))


def test_merge_moves_points_lots_holds_links_and_history(network, pair):
    coffee, books, survivor, duplicate, hold_id = pair
    assert network.tx(lambda tx: current_tier(tx, duplicate)) == "gold"
    done = merge(network, survivor, duplicate, reason="same person, two phones")
    assert (done["available"], done["held"], done["lots"], done["holds"]) == (500, 50, 2, 1)
    assert done["balance"] == {"available": 700, "held": 50}
    verify_ok(network)
    assert links(network, survivor) == {coffee, books} and links(network, duplicate) == set()
    assert network.tx(lambda tx: current_tier(tx, survivor)) == "gold"
    history = network.tx(lambda tx: [(h.from_tier, h.to_tier, h.reason) for h in tx.session.execute(
        select(MemberTierHistory).where(MemberTierHistory.member_id == survivor)
        .order_by(MemberTierHistory.at, MemberTierHistory.reason.desc())).scalars()])
    # the survivor's own, the duplicate's (moved over), and the merge itself
    assert sorted(history) == sorted([("regular", "silver", "qualified"), ("regular", "silver", "qualified"),
                                      ("silver", "gold", "qualified"), ("silver", "gold", "merge")])
    summary = network.tx(lambda tx: member_summary(tx, survivor), readonly=True)
    assert summary["merged_from"][0]["member_id"] == duplicate
    assert summary["tier"]["qualifying_points"] == 750  # the duplicate's earns qualify for the survivor
    left = network.tx(lambda tx: member_summary(tx, duplicate), readonly=True)
    assert left["merged_into"] == survivor and left["balance"] == {"available": 0, "held": 0}

    # what moved works as the survivor's: capture the hold, reverse the duplicate's earn
    network.capture(books, hold_id, 30)
    reversed_ = network.reverse(books, "d-1-r", "d-1", points=100)
    assert reversed_["member_id"] == survivor
    assert network.balance(survivor)["available"] == 700 + 20 - 100
    verify_ok(network)
    # the duplicate is gone for every writer and reader
    with pytest.raises(UnknownMember):
        network.earn(coffee, duplicate, "late", points=5)
    with pytest.raises(UnknownMember):
        network.grant_bonus(duplicate, 5, reason="oops")
    with pytest.raises(UnknownMember):
        merge(network, survivor, duplicate)
    assert network.tx(lambda tx: tx.session.execute(select(MemberMerge.reason)).scalar_one()) == \
        "same person, two phones"


def test_the_duplicates_phone_now_finds_the_survivor(network):
    coffee, books = make_partner(network, "Coffee"), make_partner(network, "Books")
    survivor = make_member(network, coffee)
    duplicate = make_member(network, books, phone="+8613900001111")
    merge(network, survivor, duplicate)
    # Books was linked to the duplicate only: its link moved, so the phone answers with the survivor
    assert network.enrol(books, phone="+8613900001111")["member_id"] == survivor


def test_merge_refusals(network, pair):
    _, _, survivor, duplicate, _ = pair
    with pytest.raises(ValidationFailed):
        merge(network, survivor, survivor)
    with pytest.raises(UnknownMember):
        merge(network, survivor, "mbr_nobody")


def test_a_merged_duplicate_of_a_duplicate_points_at_the_last_survivor(network):
    partner = make_partner(network)
    a, b, c = (make_member(network, partner) for _ in range(3))
    network.earn(partner, a, "a-1", points=10)
    merge(network, b, a)
    merge(network, c, b)
    assert network.tx(lambda tx: member_balance(tx, c))["available"] == 10
    network.reverse(partner, "a-1-r", "a-1")
    assert network.balance(c)["available"] == 0
    verify_ok(network)
