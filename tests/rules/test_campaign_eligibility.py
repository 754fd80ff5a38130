"""Which purchases a category campaign applies to: those with items in its categories (docs/earn-rules.md),
whatever points those items earn — a base rate of 0 or an item costing 0 included."""

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from shared.errors import ValidationFailed
from shared.ledger.events import Event
from shared.ledger.posting import quote_earn
from shared.rules.document import RuleSet, parse
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


# docs/earn-rules.md, "How points are computed", 3: a multiplier campaign multiplies the eligible items'
# base points before SKU and category multipliers (no compounding), but never more than the item earns
# itself: an item at 0 earns nothing from it, one at 0.5 is multiplied at its own points
GIFTS = "base_rate: 1\nskus: {GIFT-CARD: 0, HALF: 0.5}\ncategories: {books: 2, tea: 0}\n"
DOUBLE = f"campaigns: [{{id: double, name: Double, {NOVEMBER}, multiplier: 2}}]"
TRIPLE_TEA = f"campaigns: [{{id: tea, name: Tea, {NOVEMBER}, categories: [tea], multiplier: 3}}]"


ZERO_AND_PARTIAL = [
    ("a gift card at SKU multiplier 0 gets nothing", GIFTS + DOUBLE, 50_000, [("GIFT-CARD", None, 50_000)],
     [("base_rate", 0)]),
    ("an item of a category at 0 gets nothing", GIFTS + DOUBLE, 5_000, [("T", "tea", 5_000)], [("base_rate", 0)]),
    ("the rest of the purchase is doubled, the gift card not", GIFTS + DOUBLE, 70_000,
     [("GIFT-CARD", None, 50_000)], [("base_rate", 200), ("campaign:double", 200)]),
    ("no compounding: books at 2 are doubled at their base points", GIFTS + DOUBLE, 60_000,
     [("GIFT-CARD", None, 50_000), ("B", "books", 10_000)], [("base_rate", 200), ("campaign:double", 100)]),
    ("an item at 0.5 is doubled at its own points", GIFTS + DOUBLE, 10_000, [("HALF", "books", 10_000)],
     [("base_rate", 50), ("campaign:double", 50)]),
    ("a category campaign on items that earn nothing gives nothing", GIFTS + TRIPLE_TEA, 5_000,
     [("T", "tea", 5_000)], [("base_rate", 0)]),
    ("a category campaign counts only its items' own points", "base_rate: 1\nskus: {T0: 0, T5: 0.5}\n" + TRIPLE_TEA,
     30_000, [("T0", "tea", 10_000), ("T5", "tea", 10_000), ("T1", "tea", 10_000)],
     [("base_rate", 150), ("campaign:tea", 300)]),
]


@pytest.mark.parametrize("rules,amount,items,expected", [pytest.param(*case[1:], id=case[0].replace(" ", "-"))
                                                         for case in ZERO_AND_PARTIAL])
def test_a_multiplier_campaign_gives_nothing_for_what_earns_nothing(rules, amount, items, expected):
    assert lines(rules, amount, items) == expected


def test_a_gift_card_on_a_double_points_weekend_earns_nothing(network, clock):
    """The documented example (gift cards earn nothing, weekends double): a 500 CNY gift card on a
    Saturday is refused nothing_to_earn, earn and quote alike, not paid 500 campaign points."""
    from shared.errors import NothingToEarn

    clock.set(datetime(2026, 11, 21, 12, tzinfo=SHANGHAI))  # a Saturday
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1\nskus: {GIFT-CARD: 0}\ncampaigns: [{id: weekend, "
                                    f"name: Double weekend, {NOVEMBER}, weekdays: [6, 7], multiplier: 2}}]"))
    gift = Event("earn", "gift-1", member, amount=50_000, items=(PurchaseItem("GIFT-CARD", None, 50_000),))
    with pytest.raises(NothingToEarn):
        network.tx(lambda tx: quote_earn(tx, partner, gift), readonly=True)
    [outcome] = network.post(partner, [gift])
    assert not isinstance(outcome, dict) and outcome.code == "nothing_to_earn", outcome
    mixed = Event("earn", "mixed-1", member, amount=60_000,
                  items=(PurchaseItem("GIFT-CARD", None, 50_000), PurchaseItem("B", "books", 10_000)))
    [outcome] = network.post(partner, [mixed])
    assert {line["rule"]: line["points"] for line in outcome["breakdown"]} == {"base_rate": 100,
                                                                              "campaign:weekend": 100}


def test_the_documented_worked_example():
    """docs/earn-rules.md, step 3: the example document with HALF: 0.5, a weekend purchase of 700 CNY."""
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "earn-rules.md").read_text()
    example = re.search(r"## The document\n\n```yaml\n(.*?)```", doc, re.S).group(1)
    rules = parse(example.replace("  GIFT-CARD: 0\n", "  GIFT-CARD: 0\n  HALF: 0.5\n"))
    result = evaluate(amount=70_000, items=(PurchaseItem("GIFT-CARD", None, 50_000), PurchaseItem("B", "books", 10_000),
                                            PurchaseItem("HALF", None, 10_000)),
                      occurred_local=datetime(2026, 11, 21, 12, tzinfo=SHANGHAI), currency="CNY",
                      contract_base_rate_micro=1_000_000, partner=rules, partner_scope="p")
    assert [(line.rule, line.points) for line in result.lines] == [("base_rate", 250), ("campaign:weekend", 150)]


BOOKS_TWICE = (f"base_rate: 1\ncampaigns: [{{id: b, name: B, {NOVEMBER}, categories: [books, tea, books, books], "
               "multiplier: 2}]")


def test_a_category_listed_more_than_once_is_refused():
    with pytest.raises(ValidationFailed) as refused:
        parse(BOOKS_TWICE)
    assert refused.value.code == "validation_failed"
    assert "campaign b: categories lists books more than once; list each category once" in str(refused.value)


def test_a_stored_campaign_listing_a_category_more_than_once_counts_it_once():
    """A version stored before a repeated category was refused: the extra is (multiplier - 1) x the
    base points of the eligible items, each category counted once."""
    stored = RuleSet.model_validate(yaml.safe_load(BOOKS_TWICE))
    result = evaluate(amount=10_000, items=(PurchaseItem("X", "books", 6_000), PurchaseItem("T", "tea", 4_000)),
                      occurred_local=WEDNESDAY, currency="CNY", contract_base_rate_micro=1_000_000, partner=stored,
                      partner_scope="p")
    assert [(line.rule, line.points) for line in result.lines] == [("base_rate", 100), ("campaign:b", 100)]
