"""An earn's items are lines of its purchase: together at most its `amount` (docs/partner-integration.md,
Bounds). Items adding up to more are refused 422 `invalid_amount` — in an earn, in a batch (at that
event's index) and in a quote — and nothing is written; the earn rules never see them."""

import pytest
from sqlalchemy import func, select

from shared.errors import InvalidAmount
from shared.ledger.events import Event
from shared.ledger.posting import quote_earn
from shared.models import Entry, Lot, ObligationLine, Transfer
from shared.rules.evaluate import PurchaseItem
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner

BOOKS_100000 = (PurchaseItem("B", "books", 100_000),)


@pytest.fixture
def shop(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1\nminimum_spend: 1000\ncategories: {books: 2}"))
    return partner, member


def footprint(network):
    def count(tx):
        return tuple(tx.session.execute(select(func.count()).select_from(model)).scalar_one()
                     for model in (Entry, Transfer, Lot, ObligationLine))
    return network.tx(count, readonly=True)


def test_an_earn_whose_items_add_up_to_more_than_its_amount_is_refused_and_writes_nothing(network, shop):
    """Found by review: amount 10.00 with a 1,000.00 item of books earned 2,000 points (and passed the
    minimum spend of 10.00, which is checked against the amount)."""
    partner, member = shop
    before = footprint(network)
    [outcome] = network.post(partner, [Event("earn", "inflated", member, amount=1_000, items=BOOKS_100000)])
    assert isinstance(outcome, InvalidAmount), outcome
    assert outcome.code == "invalid_amount" and outcome.status == 422
    assert "100000" in str(outcome) and "1000" in str(outcome)
    assert footprint(network) == before
    assert network.balance(member)["available"] == 0


def test_a_quote_refuses_the_same_purchase(network, shop):
    partner, member = shop
    event = Event("earn", "inflated", member, amount=1_000, items=BOOKS_100000)
    with pytest.raises(InvalidAmount):
        network.tx(lambda tx: quote_earn(tx, partner, event), readonly=True)


def test_in_a_batch_only_the_inconsistent_earn_is_refused(network, shop):
    partner, member = shop
    outcomes = network.post(partner, [
        Event("earn", "b-1", member, amount=10_000),
        Event("earn", "b-2", member, amount=99_999, items=BOOKS_100000),
        Event("earn", "b-3", member, amount=100_000, items=BOOKS_100000),
    ])
    assert isinstance(outcomes[1], InvalidAmount), outcomes[1]
    assert outcomes[0]["points"] == 100
    assert outcomes[2]["points"] == 2_000  # items equal to the amount: every fen is an item's
    assert network.balance(member)["available"] == 2_100


@pytest.mark.parametrize("items,points", [
    ((PurchaseItem("B", "books", 500), PurchaseItem("T", "tea", 500)), 15),  # exactly the amount: 5 x 2 + 5
    ((PurchaseItem("B", "books", 0),), 10),  # a free item: the whole amount is the rest, at the base rate
], ids=["items equal to the amount", "a free item"])
def test_items_within_the_amount_earn_by_the_rules(network, shop, items, points):
    partner, member = shop
    [outcome] = network.post(partner, [Event("earn", "fine", member, amount=1_000, items=items)])
    assert isinstance(outcome, dict), outcome
    assert outcome["points"] == points


@pytest.mark.parametrize("bad", [-1, 2.5, True, None, "100"])
def test_an_item_amount_that_is_not_a_non_negative_integer_is_refused(network, shop, bad):
    """A negative line could otherwise offset an inflated one (1,000.00 of books at -990.00 of tea)."""
    partner, member = shop
    items = (PurchaseItem("B", "books", 100_000), PurchaseItem("T", "tea", bad))
    [outcome] = network.post(partner, [Event("earn", "negative", member, amount=1_000, items=items)])
    assert isinstance(outcome, InvalidAmount), outcome


def test_explicit_points_without_an_amount_take_items_as_they_are(network, shop):
    """Without an `amount` there is no purchase total to check the items against (the rules, which read
    them, are not used: explicit points bypass them)."""
    partner, member = shop
    [outcome] = network.post(partner, [Event("earn", "explicit", member, points=7, items=BOOKS_100000)])
    assert outcome["points"] == 7


def test_explicit_points_with_an_amount_still_need_consistent_items(network, shop):
    """The amount is what the referral's `min_spend` is checked against, even with explicit points."""
    partner, member = shop
    [outcome] = network.post(partner, [Event("earn", "explicit", member, points=7, amount=1_000,
                                             items=BOOKS_100000)])
    assert isinstance(outcome, InvalidAmount), outcome


def test_inflated_items_cannot_earn_a_referral_bonus(network, shop):
    """The referral's `min_spend` is checked against the amount: an earn that could only pass it by its
    items is refused before any bonus is considered."""
    partner, member = shop
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1\nreferral: {bonus_points: 500, min_spend: 50000}"))
    referee = network.enrol(partner, phone="+8613900005555", referrer_member_id=member)["member_id"]
    [outcome] = network.post(partner, [Event("earn", "ref", referee, amount=1_000, items=BOOKS_100000)])
    assert isinstance(outcome, InvalidAmount), outcome
    assert network.balance(member)["available"] == 0
