"""Tier multipliers in earn rules: a breakdown line of their own, and a quote always equals the earn."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from shared.errors import NothingToEarn, ValidationFailed
from shared.ledger.events import Event
from shared.ledger.posting import quote_earn
from shared.programme.tiers import current_tier
from shared.rules.document import parse
from shared.rules.evaluate import PurchaseItem, evaluate
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner

RULES = """
base_rate: 1
rounding: half_up
categories: {books: 2}
tier_multipliers: {silver: "1.25", gold: "1.5", platinum: 2}
campaigns:
  - {id: weekend, name: Double weekend, starts_on: 2026-11-01, ends_on: 2026-12-31, weekdays: [6, 7], multiplier: 2}
"""
FRIDAY = datetime(2026, 11, 20, 12, tzinfo=timezone(timedelta(hours=8)))


def lines(amount, tier, items=(), when=FRIDAY):
    result = evaluate(amount=amount, items=tuple(PurchaseItem(*i) for i in items), occurred_local=when,
                      currency="CNY", contract_base_rate_micro=1_000_000, partner=parse(RULES), partner_scope="p",
                      tier=tier)
    return [(line.rule, line.points, line.funded_by) for line in result.lines]


@pytest.mark.parametrize("tier,expected", [
    (None, [("base_rate", 101, "partner")]),
    ("regular", [("base_rate", 101, "partner")]),
    ("silver", [("base_rate", 101, "partner"), ("tier:silver", 25, "partner")]),  # 25.25
    ("gold", [("base_rate", 101, "partner"), ("tier:gold", 51, "partner")]),  # 50.5 half up
    ("platinum", [("base_rate", 101, "partner"), ("tier:platinum", 101, "partner")]),
])
def test_the_tier_multiplies_the_base_points(tier, expected):
    assert lines(10_050, tier) == expected


def test_the_tier_multiplies_category_points_not_campaign_extras():
    saturday = FRIDAY + timedelta(days=1)
    assert lines(10_000, "gold", items=[("B", "books", 5_000)], when=saturday) == [
        ("base_rate", 150, "partner"), ("tier:gold", 75, "partner"), ("campaign:weekend", 100, "partner")]


@pytest.mark.parametrize("document,problem", [
    ("tier_multipliers: {gold: '0.5'}", "at least 1"),
    ("tier_multipliers: {gold: '1.0000001'}", "6 decimal places"),
])
def test_invalid_tier_multipliers_are_refused(document, problem):
    with pytest.raises(ValidationFailed, match=problem):
        parse(document)


def test_network_rules_hold_no_tier_multipliers():
    with pytest.raises(ValidationFailed, match="campaigns only"):
        parse("tier_multipliers: {gold: 2}", network=True)


@pytest.fixture
def shop(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, RULES))
    return partner, member


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(purchases=st.lists(st.tuples(st.integers(0, 80_000), st.integers(0, 30_000), st.integers(0, 60)),
                          min_size=1, max_size=8))
def test_a_quote_and_the_earn_agree_as_the_member_climbs(network, shop, clock, purchases):
    """Each purchase is quoted, then earned; crossing thresholds on the way changes the tier of the next."""
    partner, member = shop
    for amount, books, hours in purchases:
        clock.advance(hours=hours, seconds=1)
        items = (PurchaseItem("B", "books", books),) if books else None
        event = Event("earn", f"q-{clock.now().isoformat()}", member, amount=amount + books, items=items)
        try:
            quote = network.tx(lambda tx: quote_earn(tx, partner, event))
        except NothingToEarn as refusal:  # refused as its earn is: a quote of 0 would promise an earn that fails
            quote = refusal
        tier = network.tx(lambda tx: current_tier(tx, member), readonly=True)
        [outcome] = network.post(partner, [event])
        if isinstance(outcome, NothingToEarn):
            assert isinstance(quote, NothingToEarn) and quote.to_problem() == outcome.to_problem()
            continue
        assert not isinstance(quote, NothingToEarn), f"the earn posted {outcome['points']} points"
        assert (outcome["points"], outcome["breakdown"]) == (quote["points"], quote["breakdown"])
        tier_lines = [line["rule"] for line in quote["breakdown"] if line["rule"].startswith("tier:")]
        base = next(line["points"] for line in quote["breakdown"] if line["rule"] == "base_rate")
        if tier == "regular":
            assert tier_lines == []
        elif base >= 4:  # below that, a 1.25 multiplier may round to no extra point
            assert tier_lines == [f"tier:{tier}"]


def test_a_tier_multiplier_naming_no_tier_of_the_ladder_is_refused(network):
    """A typo (glod) would never apply: refused naming the key and the tiers there are; nothing stored."""
    from shared.rules.store import rules_in_force

    partner = make_partner(network)
    with pytest.raises(ValidationFailed) as refused:
        network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1\ntier_multipliers: {silver: 2, glod: 3}\n"))
    message = str(refused.value)
    assert "tier_multipliers: glod is not a tier" in message and "silver is not" not in message
    assert "the tiers are regular, silver, gold, platinum" in message
    assert network.tx(lambda tx: rules_in_force(tx, partner, tx.now), readonly=True) is None
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1\ntier_multipliers: {silver: 2, gold: 3}\n"))
