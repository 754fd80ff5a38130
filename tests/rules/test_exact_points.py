"""Points are computed exactly: the partner's rounding is the only rounding, whatever the sizes
(within the bounds the rules allow) and whatever decimal context the calling thread has set."""

import importlib
import json
from datetime import datetime, timezone
from decimal import ROUND_UP, Context, Decimal, localcontext
from fractions import Fraction
from unittest import mock

import pytest
from hypothesis import example, given, strategies as st

from shared.errors import InvalidAmount, ValidationFailed
from shared.ledger.events import Event
from shared.ledger.posting import quote_earn
from shared.rules.document import MAX_RATE, parse
from shared.rules.evaluate import PurchaseItem, evaluate
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner

evaluate_module = importlib.import_module("shared.rules.evaluate")

NOVEMBER = datetime(2026, 11, 20, tzinfo=timezone.utc)
# a campaign's extra here has 33 significant digits: at Python's default 28 it was rounded half-even
# (up, as it happens) before the partner's floor, which then gave one point too many
REPRODUCTION = ("base_rate: '0.000001'\nrounding: floor\ncategories: {x: '0.999999'}\ncampaigns:\n"
                "  - {id: c, name: C, starts_on: 2026-11-01, ends_on: 2026-11-30, multiplier: '763293375636.035461'}\n")


def reproduce(**kwargs):
    return evaluate(amount=1000141, items=(PurchaseItem("S", "x", 1000141),), occurred_local=NOVEMBER,
                    currency="CNY", contract_base_rate_micro=1_000_000, partner=parse(REPRODUCTION),
                    partner_scope="p", **kwargs)


def points(evaluation) -> list[tuple[str, int]]:
    return [(line.rule, line.points) for line in evaluation.lines]


def test_a_campaigns_extra_is_floored_from_the_exact_value():
    points_before_multiplier = Fraction(1000141, 100) * Fraction("0.000001") * Fraction("0.999999")
    exact = points_before_multiplier * (Fraction("763293375636.035461") - 1)
    assert exact.numerator // exact.denominator == 7634002365
    assert points(reproduce()) == [("base_rate", 0), ("campaign:c", 7634002365)]


@pytest.mark.parametrize("context", [Context(prec=6), Context(prec=28, rounding=ROUND_UP),
                                     Context(prec=200, traps=[]), Context(prec=3, traps=[])],
                         ids=["6 digits", "rounding up", "200 digits, no traps", "3 digits, no traps"])
def test_the_callers_decimal_context_changes_nothing(context):
    """A thread that set its own decimal context (a report, a library) gets the same points and
    descriptions, and a document is read the same: rules are evaluated in a context of their own."""
    expected = reproduce()
    with localcontext(context):
        assert parse("base_rate: 12345.123456").base_rate == Decimal("12345.123456")
        with pytest.raises(ValidationFailed, match="at most 6 decimal places"):
            parse("base_rate: 1.0000001")
        assert reproduce() == expected
        tiered = evaluate(amount=12_345_678, items=(), occurred_local=NOVEMBER, currency="CNY",
                          contract_base_rate_micro=1_000_000, partner=parse("tier_multipliers: {gold: 2.5}"),
                          partner_scope="p", tier="gold")
    assert points(expected) == [("base_rate", 0), ("campaign:c", 7634002365)]
    assert points(tiered) == [("base_rate", 123456), ("tier:gold", 185184)]
    assert [line.description for line in tiered.lines] == ["1 points per CNY unit", "gold tier: 2.5× the base points"]


def test_a_purchase_too_large_to_compute_exactly_is_refused_not_rounded():
    """Far beyond any amount the API accepts (10^15 minor units), an inexact intermediate refuses the
    purchase rather than rounding its points silently."""
    with pytest.raises(InvalidAmount, match="too many digits to be computed exactly"):
        evaluate(amount=10**90, items=(PurchaseItem("S", "x", 10**90 - 1),), occurred_local=NOVEMBER,
                 currency="CNY", contract_base_rate_micro=1_000_000, partner=parse(REPRODUCTION), partner_scope="p")


# -- the chosen precision against 200 digits, for any inputs within the rules' bounds -----------------

MAX_AMOUNT = 10**15  # minor units: the API's bound on a purchase and on an item


def six_places(low: int, high: int):
    """Decimals with at most 6 places in [low, high], of every magnitude (not only the largest)."""
    return st.integers(0, 18).flatmap(
        lambda digits: st.integers(low * 10**6, max(low * 10**6, min(high * 10**6, 10**digits)))).map(
        lambda micro: Decimal(micro).scaleb(-6))


MULTIPLIER = six_places(0, int(MAX_RATE))
ABOVE_ONE = six_places(1, int(MAX_RATE)).filter(lambda m: m > 1)


@st.composite
def purchases(draw):
    amount = draw(st.integers(0, MAX_AMOUNT))
    items, left = [], amount
    for n in range(draw(st.integers(0, 4))):
        line = draw(st.integers(0, left))
        items.append(PurchaseItem(f"S{n}", draw(st.sampled_from(["a", "b", None])), line))
        left -= line
    document = {"rounding": draw(st.sampled_from(["floor", "half_up", "half_even", "ceiling"])),
                "categories": {"a": str(draw(MULTIPLIER)), "b": str(draw(MULTIPLIER))},
                "skus": {"S0": str(draw(MULTIPLIER))},
                "tier_multipliers": {"gold": str(draw(six_places(1, int(MAX_RATE))))},
                "campaigns": [{"id": "all", "name": "All", "starts_on": "2026-11-01", "ends_on": "2026-11-30",
                               "multiplier": str(draw(ABOVE_ONE))},
                              {"id": "cat", "name": "Cat", "starts_on": "2026-11-01", "ends_on": "2026-11-30",
                               "multiplier": str(draw(ABOVE_ONE)), "categories": ["a"]}]}
    if draw(st.booleans()):
        document["base_rate"] = str(draw(MULTIPLIER))
    return dict(amount=amount, items=tuple(items), occurred_local=NOVEMBER,
                currency=draw(st.sampled_from(["CNY", "JPY", "KWD"])),
                contract_base_rate_micro=draw(st.integers(0, int(MAX_RATE) * 10**6)),
                partner=parse(json.dumps(document)), partner_scope="p", tier="gold")


@given(purchase=purchases())
@example(purchase=dict(amount=1000141, items=(PurchaseItem("S", "x", 1000141),), occurred_local=NOVEMBER,
                       currency="CNY", contract_base_rate_micro=1_000_000, partner=parse(REPRODUCTION),
                       partner_scope="p", tier=None))
def test_the_chosen_precision_computes_what_200_digits_compute(purchase):
    """evaluate traps Inexact, so this also says that no intermediate was rounded at the chosen
    precision (at 28 digits, as before, Hypothesis finds one within a few examples)."""
    chosen = evaluate(**purchase)
    with mock.patch.object(evaluate_module, "_EXACT", Context(prec=200, traps=[])):
        wide = evaluate(**purchase)
    assert chosen == wide


# -- through the ledger ----------------------------------------------------------------------------------

def test_an_earn_gives_the_exactly_floored_campaign_points(network, clock):
    partner = make_partner(network)
    member = make_member(network, partner)
    clock.set(NOVEMBER)
    network.tx(lambda tx: set_rules(tx, partner, REPRODUCTION))
    event = Event("earn", "exact-1", member, amount=1000141, items=(PurchaseItem("S", "x", 1000141),))
    quote = network.tx(lambda tx: quote_earn(tx, partner, event))
    [outcome] = network.post(partner, [event])
    assert outcome["points"] == quote["points"] == 7634002365
