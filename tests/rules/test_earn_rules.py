"""Earn rules: table-driven evaluation, quote == earn, network-funded campaign lots, caps, versions."""

import threading
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shared.errors import NothingToEarn, ValidationFailed
from shared.ledger.events import Event
from shared.ledger import posting as posting_module
from shared.ledger.posting import quote_earn
from shared.rules.document import parse
from shared.rules.evaluate import PurchaseItem, evaluate
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner

SHANGHAI = timezone(timedelta(hours=8))
RULES = """
base_rate: 1
minimum_spend: 1000
rounding: floor
categories: {books: 2, tea: 1.5}
skus: {GIFT-CARD: 0}
campaigns:
  - {id: weekend, name: Double weekend, starts_on: 2026-11-01, ends_on: 2026-11-30, weekdays: [6, 7], multiplier: 2}
  - {id: tea-week, name: Tea week, starts_on: 2026-11-16, ends_on: 2026-11-22, categories: [tea], bonus_points: 20,
     per_member_cap: 30}
"""


def run(amount, items=(), when=datetime(2026, 11, 18, 12, tzinfo=SHANGHAI), rules=RULES, usage=None,
        network=None):
    return evaluate(amount=amount, items=tuple(PurchaseItem(*i) for i in items), occurred_local=when,
                    currency="CNY", contract_base_rate_micro=1_000_000, partner=parse(rules), partner_scope="p",
                    network=parse(network, network=True) if network else None, usage=usage)


CASES = [
    ("base rate, floor", dict(amount=12_899), [("base_rate", 128)]),
    ("below the minimum spend", dict(amount=999), [("minimum_spend", 0)]),
    ("category multiplier", dict(amount=10_000, items=[("B1", "books", 5_000)]), [("base_rate", 150)]),
    ("a SKU beats its category", dict(amount=5_000, items=[("GIFT-CARD", "books", 5_000)]), [("base_rate", 0)]),
    ("fractional multiplier then one rounding", dict(amount=1_050, items=[("T1", "tea", 1_050)]),
     [("base_rate", 15), ("campaign:tea-week", 20)]),
    ("double points on Saturday in Shanghai, still Friday in UTC",
     dict(amount=10_000, when=datetime(2026, 11, 21, 0, 30, tzinfo=SHANGHAI)),
     [("base_rate", 100), ("campaign:weekend", 100)]),
    ("not on Friday in Shanghai", dict(amount=10_000, when=datetime(2026, 11, 20, 23, 30, tzinfo=SHANGHAI)),
     [("base_rate", 100)]),
    ("per-member cap already partly used", dict(amount=2_000, items=[("T1", "tea", 2_000)],
                                              usage={"p:tea-week": (25, 25)}),
     [("base_rate", 30), ("campaign:tea-week", 5)]),
    ("half-up rounding", dict(amount=1_250, rules="base_rate: 1\nrounding: half_up"), [("base_rate", 13)]),
    ("half-even rounding", dict(amount=1_250, rules="base_rate: 1\nrounding: half_even"), [("base_rate", 12)]),
    ("ceiling rounding", dict(amount=1_201, rules="base_rate: 1\nrounding: ceiling"), [("base_rate", 13)]),
    ("network campaign funded by the network",
     dict(amount=10_000, network="campaigns: [{id: city, name: City day, starts_on: 2026-11-18, ends_on: 2026-11-18, "
                                 "bonus_points: 50, funded_by: network, campaign_cap: 60}]",
          usage={"network:city": (0, 40)}),
     [("base_rate", 100), ("campaign:city", 20)]),
]


@pytest.mark.parametrize("name,kwargs,expected", CASES, ids=[c[0] for c in CASES])
def test_rule_evaluation(name, kwargs, expected):
    result = run(**kwargs)
    assert [(line.rule, line.points) for line in result.lines] == expected


def test_network_campaign_points_are_network_funded():
    result = run(10_000, network="campaigns: [{id: city, name: City day, starts_on: 2026-11-18, "
                                 "ends_on: 2026-11-18, bonus_points: 50, funded_by: network}]")
    assert (result.partner_points, result.network_points) == (100, 50)


@pytest.mark.parametrize("document,problem", [
    ("base_rate: -1", "base_rate"),
    ("campaigns: [{id: a, name: A, starts_on: 2026-01-02, ends_on: 2026-01-01, multiplier: 2}]", "before"),
    ("campaigns: [{id: a, name: A, starts_on: 2026-01-01, ends_on: 2026-01-02}]", "exactly one"),
    ("campaigns: [{id: a, name: A, starts_on: 2026-01-01, ends_on: 2026-01-02, multiplier: 2, weekdays: [8]}]",
     "weekdays"),
    ("bonus: 5", "bonus"),
    ("{not yaml: [", "not valid"),
])
def test_invalid_documents_are_refused_naming_the_problem(document, problem):
    with pytest.raises(ValidationFailed) as refusal:
        parse(document)
    assert problem in str(refusal.value)


@pytest.fixture
def shop(network):
    partner = make_partner(network, issuance_fee="0.1")
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, RULES))
    network.tx(lambda tx: set_rules(tx, "network", "campaigns: [{id: city, name: City day, starts_on: 2026-11-01, "
                                                   "ends_on: 2026-11-30, bonus_points: 10, funded_by: network, "
                                                   "per_member_cap: 25}]"))
    return partner, member


def test_earn_posts_network_campaign_points_as_their_own_lot(network, shop):
    partner, member = shop
    result = network.earn(partner, member, "o-1", amount=10_000)
    assert result["points"] == 110 and result["rules"] == {"partner": 1, "network": 1}
    funded = sorted((lot["funded_by"], lot["points"]) for lot in result["lots"])
    assert funded == [("network", 10), (partner, 100)]
    network.earn(partner, member, "o-2", amount=10_000)
    third = network.earn(partner, member, "o-3", amount=10_000)
    assert [l["points"] for l in third["breakdown"] if l["rule"] == "campaign:city"] == [5]  # capped at 25
    # reversing an earn takes from what remains of its lots, the partner's and the network's
    reversed_ = network.reverse(partner, "r-1", "o-1")
    assert reversed_["points"] == 110 and network.balance(member)["available"] == 215


def test_campaign_caps_hold_between_the_earns_of_one_batch(network, shop, clock):
    """Each earn of a batch sees what the batch's earlier earns took: its member's own use against the
    cap per member, every member's against the campaign's cap."""
    partner, member = shop
    other = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, "network", "campaigns: [{id: city, name: City day, starts_on: 2026-11-01, "
                                                   "ends_on: 2026-11-30, bonus_points: 10, funded_by: network, "
                                                   "per_member_cap: 25, campaign_cap: 45}]"))
    clock.advance(seconds=1)
    earners = [member, other, member, other, member, other]
    outcomes = network.post(partner, [Event("earn", f"b-{n}", who, amount=10_000) for n, who in enumerate(earners)])
    city = [sum(l["points"] for l in o["breakdown"] if l["rule"] == "campaign:city") for o in outcomes]
    assert city == [10, 10, 10, 10, 5, 0]  # the fifth meets both caps (25 for the member, 45 in all)
    later = network.earn(partner, other, "after", amount=10_000)  # the next unit reads the stored use
    assert [l for l in later["breakdown"] if l["rule"] == "campaign:city"] == []


def test_two_units_cannot_both_give_a_campaigns_last_points(network, shop, clock, monkeypatch):
    """A cap in all holds between concurrent units: the second reads the total only after the first,
    which gave the campaign's last points, has committed (on PostgreSQL the campaign's lock; on SQLite
    the one writer)."""
    partner, member = shop
    other = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, "network", "campaigns: [{id: city, name: City day, starts_on: 2026-11-01, "
                                                   "ends_on: 2026-11-30, bonus_points: 10, funded_by: network, "
                                                   "campaign_cap: 10}]"))
    clock.advance(seconds=1)
    network.earn(partner, other, "opens-the-day", points=1)  # the day's cycle exists (its insert waits too)
    first_has_read, release = threading.Event(), threading.Event()
    read_usage = posting_module.campaign_usage

    def first_pauses_after_reading(tx, *args, **kwargs):
        usage = read_usage(tx, *args, **kwargs)
        if threading.current_thread().name == "first":
            first_has_read.set()
            release.wait(10)
        return usage

    monkeypatch.setattr(posting_module, "campaign_usage", first_pauses_after_reading)
    results = {}

    def earn(name, who):
        results[name] = network.earn(partner, who, f"cap-{name}", amount=10_000)

    first = threading.Thread(target=earn, args=("first", member), name="first")
    first.start()
    assert first_has_read.wait(10)
    second = threading.Thread(target=earn, args=("second", other), name="second")
    second.start()
    second.join(1.0)  # unguarded, the second would read the same total as the first and finish meanwhile
    release.set()
    first.join(10)
    second.join(10)
    city = {name: sum(l["points"] for l in result["breakdown"] if l["rule"] == "campaign:city")
            for name, result in results.items()}
    assert city == {"first": 10, "second": 0}


def test_an_uncapped_campaign_reads_no_usage(network, shop, clock, monkeypatch):
    """Double points without caps read nothing of what the campaign gave (a sum over all its awards)."""
    partner, member = shop
    network.tx(lambda tx: set_rules(tx, partner, "campaigns: [{id: double, name: Double, starts_on: 2026-11-01, "
                                                 "ends_on: 2026-11-30, multiplier: 2}]"))
    network.tx(lambda tx: set_rules(tx, "network", "campaigns: []"))
    clock.advance(seconds=1)
    asked = []
    read_usage = posting_module.campaign_usage
    monkeypatch.setattr(posting_module, "campaign_usage",
                        lambda tx, in_all, per_member, *a, **k: asked.append((in_all, per_member))
                        or read_usage(tx, in_all, per_member, *a, **k))
    result = network.earn(partner, member, "double", amount=10_000)
    assert [(l["rule"], l["points"]) for l in result["breakdown"]] == [("base_rate", 100), ("campaign:double", 100)]
    assert asked == [(set(), set())]


def test_a_rules_change_leaves_old_earns_explained(network, shop, clock):
    partner, member = shop
    first = network.earn(partner, member, "o-1", amount=10_000)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 3"))
    clock.advance(seconds=1)
    second = network.earn(partner, member, "o-2", amount=10_000)
    assert first["rules"]["partner"] == 1 and second["rules"]["partner"] == 2
    assert [l["points"] for l in second["breakdown"] if l["rule"] == "base_rate"] == [300]
    assert network.earn(partner, member, "o-1", amount=10_000) == first  # the stored result, unchanged


def test_nothing_to_earn_below_the_minimum(network, shop):
    partner, member = shop
    with pytest.raises(NothingToEarn):
        network.earn(partner, member, "tiny", amount=500)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=st.integers(0, 200_000), tea=st.integers(0, 50_000), books=st.integers(0, 50_000),
       hour=st.integers(0, 23 * 7))
def test_a_quote_and_the_earn_agree(network, shop, clock, amount, tea, books, hour):
    partner, member = shop
    clock.set(datetime(2026, 11, 20, 3, tzinfo=timezone.utc) + timedelta(hours=hour))
    items = tuple(i for i in (PurchaseItem("T", "tea", tea), PurchaseItem("B", "books", books)) if i.amount)
    event = Event("earn", f"q-{clock.now().isoformat()}-{amount}-{tea}-{books}", member,
                  amount=amount + tea + books, items=items or None)
    quote = network.tx(lambda tx: quote_earn(tx, partner, event))
    [outcome] = network.post(partner, [event])
    if isinstance(outcome, NothingToEarn):
        assert quote["points"] == 0
    else:
        assert outcome["points"] == quote["points"]
        assert outcome["breakdown"] == quote["breakdown"]
