"""Which purchases a category campaign applies to: those with items in its categories (docs/earn-rules.md),
whatever points those items earn — a base rate of 0 or an item costing 0 included."""

from datetime import datetime, timedelta, timezone

import pytest

from shared.ledger.events import Event
from shared.ledger.posting import quote_earn
from shared.rules.document import parse
from shared.rules.evaluate import PurchaseItem, evaluate
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner

SHANGHAI = timezone(timedelta(hours=8))
WEDNESDAY = datetime(2026, 11, 18, 12, tzinfo=SHANGHAI)
NOVEMBER = "starts_on: 2026-11-01, ends_on: 2026-11-30"


def lines(rules: str, amount: int, items=()) -> list[tuple[str, int]]:
    result = evaluate(amount=amount, items=tuple(PurchaseItem(*i) for i in items), occurred_local=WEDNESDAY,
                      currency="CNY", contract_base_rate_micro=1_000_000, partner=parse(rules), partner_scope="p")
    return [(line.rule, line.points) for line in result.lines]


TEA_BONUS = f"campaigns: [{{id: tea, name: Tea, {NOVEMBER}, categories: [tea], bonus_points: 20}}]"
TEA_DOUBLE = f"campaigns: [{{id: tea, name: Tea, {NOVEMBER}, categories: [tea], multiplier: 2}}]"


@pytest.mark.parametrize("name,rules,amount,items,expected", [
    ("bonus at base rate 0", "base_rate: 0\n" + TEA_BONUS, 5_000, [("T", "tea", 5_000)],
     [("base_rate", 0), ("campaign:tea", 20)]),
    ("bonus for a free item in the category", "base_rate: 1\n" + TEA_BONUS, 5_000,
     [("T", "tea", 0), ("B", "books", 5_000)], [("base_rate", 50), ("campaign:tea", 20)]),
    ("bonus for a category item whose SKU earns nothing", "base_rate: 1\nskus: {T: 0}\n" + TEA_BONUS, 5_000,
     [("T", "tea", 5_000)], [("base_rate", 0), ("campaign:tea", 20)]),
    ("no bonus without an item in the category", "base_rate: 0\n" + TEA_BONUS, 5_000, [("B", "books", 5_000)],
     [("base_rate", 0)]),
    ("no bonus for a purchase without items", "base_rate: 1\n" + TEA_BONUS, 5_000, [], [("base_rate", 50)]),
    # a multiplier multiplies the eligible base points: (2 - 1) x 0 is nothing to give, as without categories
    ("multiplier at base rate 0", "base_rate: 0\n" + TEA_DOUBLE, 5_000, [("T", "tea", 5_000)], [("base_rate", 0)]),
    ("multiplier on a free item", "base_rate: 1\n" + TEA_DOUBLE, 5_000, [("T", "tea", 0), ("B", "books", 5_000)],
     [("base_rate", 50)]),
    ("multiplier on the category's part only", "base_rate: 1\n" + TEA_DOUBLE, 5_000,
     [("T", "tea", 2_000), ("B", "books", 3_000)], [("base_rate", 50), ("campaign:tea", 20)]),
])
def test_a_category_campaign_applies_to_purchases_with_items_in_its_categories(name, rules, amount, items, expected):
    assert lines(rules, amount, items) == expected


@pytest.mark.parametrize("reward", ["bonus_points: 5", "multiplier: 2"])
def test_a_purchase_entirely_in_a_category_earns_from_its_campaign_what_an_uncategorised_one_gives(reward):
    """A campaign limited to tea and one for everything agree on an all-tea purchase, at any base rate."""
    for rate in ("0", "1", "0.37"):
        rules = (f"base_rate: {rate}\ncampaigns: [{{id: all, name: All, {NOVEMBER}, {reward}}}, "
                 f"{{id: tea, name: Tea, {NOVEMBER}, categories: [tea], {reward}}}]")
        result = dict(lines(rules, 5_000, [("T", "tea", 5_000)]))
        assert result.get("campaign:all") == result.get("campaign:tea"), (rate, result)


def test_an_earn_and_its_quote_give_the_category_bonus_at_base_rate_zero(network, clock):
    """Through the ledger: the category bonus is posted (partner-funded) and the quote says so first."""
    clock.set(WEDNESDAY)
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 0\n" + TEA_BONUS))
    event = Event("earn", "tea-0", member, amount=5_000, items=(PurchaseItem("T", "tea", 5_000),))
    quote = network.tx(lambda tx: quote_earn(tx, partner, event), readonly=True)
    [outcome] = network.post(partner, [event])
    assert isinstance(outcome, dict), outcome
    assert outcome["points"] == quote["points"] == 20
    assert outcome["breakdown"] == quote["breakdown"]
    assert [(lot["funded_by"], lot["points"]) for lot in outcome["lots"]] == [(partner, 20)]
