"""Earn rules: table-driven evaluation, quote == earn, network-funded campaign lots, caps, versions."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shared.errors import NothingToEarn, ValidationFailed
from shared.ledger.events import Event
from shared.ledger import posting as posting_module
from shared.ledger.posting import quote_earn
from shared.rules.document import parse
from shared.rules.evaluate import PurchaseItem, evaluate
from shared.partners.limits import FloatGuard, record_topup
from shared.partners.lifecycle import set_status
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner
from tests.interleave import Pause, overlap

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


def city_day(network, caps: str) -> None:
    """The network's rules: the City day campaign, 10 bonus points per earn in November, with ``caps``."""
    network.tx(lambda tx: set_rules(tx, "network", "campaigns: [{id: city, name: City day, starts_on: 2026-11-01, "
                                                   "ends_on: 2026-11-30, bonus_points: 10, funded_by: network, "
                                                   f"{caps}}}]"))


@pytest.fixture
def shop(network):
    partner = make_partner(network, issuance_fee="0.1")
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, RULES))
    city_day(network, "per_member_cap: 25")
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
    city_day(network, "per_member_cap: 25, campaign_cap: 45")
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
    city_day(network, "campaign_cap: 10")
    clock.advance(seconds=1)
    network.earn(partner, other, "opens-the-day", points=1)  # the day's cycle exists (its insert waits too)
    pause = Pause().after(monkeypatch, posting_module, "campaign_usage")
    both = overlap(lambda: network.earn(partner, member, "cap-first", amount=10_000),
                   lambda: network.earn(partner, other, "cap-second", amount=10_000), pause)
    # unguarded, the second reads the same total as the first and ends meanwhile
    assert both.second_waited
    results = {"first": both.first, "second": both.second}
    city = {name: sum(l["points"] for l in result["breakdown"] if l["rule"] == "campaign:city")
            for name, result in results.items()}
    assert city == {"first": 10, "second": 0}


@pytest.mark.postgres
def test_a_used_up_campaign_makes_no_unit_wait(network, shop, clock, monkeypatch):
    """Once a campaign's cap in all is used up, postings on its days no longer take turns at it: what a
    campaign gave only grows, so none of them can give from it again."""
    partner, member = shop
    other = make_member(network, partner)
    city_day(network, "campaign_cap: 10")
    clock.advance(seconds=1)
    network.earn(partner, other, "uses-it-up", amount=10_000)
    pause = Pause().after(monkeypatch, posting_module, "campaign_usage")
    both = overlap(lambda: network.earn(partner, member, "first", amount=10_000),
                   lambda: network.earn(partner, other, "second", amount=10_000), pause)
    assert not both.second_waited
    assert [l["rule"] for r in (both.first, both.second) for l in r["breakdown"]] == ["base_rate", "base_rate"]


def _recording_usage(monkeypatch, log: list) -> None:
    read_usage = posting_module.campaign_usage

    def recorded(tx, in_all, per_member, *args, **kwargs):
        log.append((in_all, per_member))
        return read_usage(tx, in_all, per_member, *args, **kwargs)

    monkeypatch.setattr(posting_module, "campaign_usage", recorded)


def test_only_capped_campaigns_running_when_the_earns_occurred_are_read(network, clock, monkeypatch):
    """Double points without caps read nothing of what they gave (a sum over all their awards), nor
    does a capped campaign on days or weekdays it does not run."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, """
campaigns:
  - {id: double, name: Double, starts_on: 2026-11-01, ends_on: 2026-11-30, multiplier: 2}
  - {id: weekend, name: Weekend, starts_on: 2026-11-01, ends_on: 2026-11-30, weekdays: [6, 7], bonus_points: 5,
     campaign_cap: 1000}
  - {id: past, name: Past, starts_on: 2026-11-01, ends_on: 2026-11-10, bonus_points: 5, per_member_cap: 10}
"""))
    asked = []
    _recording_usage(monkeypatch, asked)
    clock.advance(seconds=1)  # a Friday in the network's time zone
    friday = network.earn(partner, member, "friday", amount=10_000)
    assert [(l["rule"], l["points"]) for l in friday["breakdown"]] == [("base_rate", 100), ("campaign:double", 100)]
    assert asked == [({}, set())]
    clock.set(datetime(2026, 11, 21, 2, tzinfo=timezone.utc))  # Saturday 10:00 in Asia/Shanghai
    saturday = network.earn(partner, member, "saturday", amount=10_000)
    assert [l["rule"] for l in saturday["breakdown"]] == ["base_rate", "campaign:double", "campaign:weekend"]
    assert asked[-1] == ({f"{partner}:weekend": 1000}, set())


def test_an_event_refused_for_its_time_leaves_the_rest_of_the_batch_posted(network, shop):
    """An occurred_at too far off is refused by validation; nothing computed from the batch's times
    before its earns run may trip over it (a date past what Python can shift into the network's zone)."""
    partner, member = shop
    far = datetime(9999, 12, 31, 23, tzinfo=timezone.utc)
    refused, posted = network.post(partner, [Event("earn", "far", member, amount=10_000, occurred_at=far),
                                             Event("earn", "near", member, amount=10_000)])
    assert getattr(refused, "code", None) == "occurred_at_out_of_range"
    assert posted["points"] == 110  # the base and the network's capped bonus


def test_a_suspended_partners_batch_locks_no_campaign(network, shop, monkeypatch):
    partner, member = shop
    network.tx(lambda tx: set_status(tx, partner, "suspended"))
    asked = []
    _recording_usage(monkeypatch, asked)
    [outcome] = network.post(partner, [Event("earn", "o-1", member, amount=10_000)])
    assert getattr(outcome, "code", None) == "partner_suspended" and asked == []


def test_campaigns_are_locked_before_a_prepaid_partners_float(network, clock, monkeypatch):
    """One order for every unit — members, capped campaigns, then the float — even when an earn with
    explicit points (no rules) comes first and would draw on the float before any rule is read."""
    partner = make_partner(network, billing="prepaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")
    member = make_member(network, partner)
    network.tx(lambda tx: record_topup(tx, partner, 10_000, "BANK-1"))
    city_day(network, "campaign_cap: 100")
    clock.advance(seconds=1)
    order = []
    read_usage = posting_module.campaign_usage
    monkeypatch.setattr(posting_module, "campaign_usage", lambda *a, **k: order.append("campaigns") or read_usage(*a, **k))
    monkeypatch.setattr(posting_module, "FloatGuard",
                        lambda *a, **k: order.append("float") or FloatGuard(*a, **k))
    outcomes = network.post(partner, [Event("earn", "explicit", member, points=5),
                                      Event("earn", "computed", member, amount=10_000)])
    assert [o["points"] for o in outcomes] == [5, 110]
    assert order == ["campaigns", "float"]


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
    try:
        quote = network.tx(lambda tx: quote_earn(tx, partner, event))
    except NothingToEarn as refusal:  # refused as its earn is: a quote of 0 would promise an earn that fails
        quote = refusal
    [outcome] = network.post(partner, [event])
    if isinstance(outcome, NothingToEarn):
        assert isinstance(quote, NothingToEarn) and quote.to_problem() == outcome.to_problem()
    else:
        assert not isinstance(quote, NothingToEarn), f"the earn posted {outcome['points']} points"
        assert outcome["points"] == quote["points"]
        assert outcome["breakdown"] == quote["breakdown"]


def test_a_rules_version_takes_effect_at_most_ten_years_ahead(network, shop, clock):
    """As a contract version: a date far ahead is a slip (2206 for 2026), and one on the calendar's last
    day broke the dashboard's Rules tab; refused naming the latest date allowed, nothing stored."""
    partner, _ = shop  # its rules are at version 1
    now = clock.now()
    ahead = now.replace(year=now.year + 10) - timedelta(days=1)
    assert network.tx(lambda tx: set_rules(tx, partner, "base_rate: 2\n", ahead))["version"] == 2
    for instant in (now.replace(year=now.year + 11), datetime(9999, 12, 31, 20, 0, tzinfo=timezone.utc)):
        with pytest.raises(ValidationFailed, match="a rules version takes effect at most 10 years ahead"):
            network.tx(lambda tx: set_rules(tx, partner, "base_rate: 3\n", instant))
    assert network.tx(lambda tx: set_rules(tx, partner, "base_rate: 4\n"))["version"] == 3



def test_the_rules_horizon_is_the_same_for_one_instant_in_any_offset(network, shop, clock):
    """Whether a version lies within the 10 years was decided by the dates of the offsets it (and the
    clock) were written in: 2036-11-20 12:00 UTC was allowed, the same instant written at +14:00 (the
    21st there) refused. Both sides are now dates in the network's time zone (Asia/Shanghai)."""
    partner, _ = shop
    inside = datetime(2036, 11, 20, 12, tzinfo=timezone.utc)  # 20:00 on the 20th in Shanghai
    for offset in (timezone.utc, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))):
        assert network.tx(lambda tx: set_rules(tx, partner, "base_rate: 2\n", inside.astimezone(offset)))
    beyond = datetime(2036, 11, 20, 16, tzinfo=timezone.utc)  # 00:00 on the 21st in Shanghai
    for offset in (timezone.utc, timezone(timedelta(hours=-12))):
        with pytest.raises(ValidationFailed, match="2036-11-20 at the latest"):
            network.tx(lambda tx: set_rules(tx, partner, "base_rate: 3\n", beyond.astimezone(offset)))
    clock.set(datetime(2026, 11, 20, 17, tzinfo=timezone.utc))  # the network's today: the 21st in Shanghai
    assert network.tx(lambda tx: set_rules(tx, partner, "base_rate: 4\n", inside + timedelta(days=1)))

def test_a_newer_version_supersedes_an_older_one_still_scheduled(network, shop, clock):
    """Version 2 is saved to take effect in two days, then version 3 at once: on version 2's date the
    operator's newer rules stay in force (version 2 never takes over), and the listing shows version
    2 as superseded. A version already in force when a newer one is saved is not superseded."""
    from shared.rules.store import rule_versions, rules_in_force, rules_in_force_for

    partner, member = shop  # its rules are at version 1, in force
    scheduled = clock.now() + timedelta(days=2)
    assert network.tx(lambda tx: set_rules(tx, partner, "base_rate: 2\n", scheduled))["supersedes"] == []
    clock.advance(seconds=1)
    assert network.tx(lambda tx: set_rules(tx, partner, "base_rate: 3\n"))["supersedes"] == [2]  # said at once
    clock.advance(seconds=1)
    assert network.earn(partner, member, "before", amount=10_000)["rules"]["partner"] == 3
    clock.set(scheduled + timedelta(hours=1))
    earned = network.earn(partner, member, "after", amount=10_000)
    assert earned["rules"]["partner"] == 3
    assert [line["points"] for line in earned["breakdown"] if line["rule"] == "base_rate"] == [300]
    assert network.tx(lambda tx: rules_in_force(tx, partner, tx.now), readonly=True)[0] == 3
    assert network.tx(lambda tx: rules_in_force_for(tx, partner, tx.now), readonly=True)[0][0] == 3
    rows, total = network.tx(lambda tx: rule_versions(tx, partner), readonly=True)
    assert total == 3
    assert [(row["version"], row["status"], row["superseded_by"]) for row in rows] == [
        (3, "in_force", None), (2, "superseded", 3), (1, "replaced", None)]


def test_a_version_saved_after_a_scheduled_one_took_effect_leaves_it_alone(network, shop, clock):
    """Supersession never rewrites the past: a scheduled version that was in force when the next was
    saved governed its own time; and a version scheduled after the newest save takes effect on its date."""
    from shared.rules.store import rule_versions, rules_in_force

    partner, _ = shop
    start = clock.now()
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 2\n", start + timedelta(days=1)))
    clock.set(start + timedelta(days=1, hours=1))
    assert network.tx(lambda tx: rules_in_force(tx, partner, tx.now), readonly=True)[0] == 2
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 3\n", start + timedelta(days=3)))
    clock.set(start + timedelta(days=2))
    assert network.tx(lambda tx: rules_in_force(tx, partner, tx.now), readonly=True)[0] == 2
    rows, _ = network.tx(lambda tx: rule_versions(tx, partner), readonly=True)
    assert [(row["version"], row["status"]) for row in rows] == [(3, "scheduled"), (2, "in_force"), (1, "replaced")]
    clock.set(start + timedelta(days=3))
    assert network.tx(lambda tx: rules_in_force(tx, partner, tx.now), readonly=True)[0] == 3


def test_an_item_without_a_category_earns_no_category_multiplier():
    """An item sent without a category is in no category: a multiplier stored for the empty name (a
    version saved before such names were refused) no longer applies to it, as no campaign of that
    "category" did."""
    from shared.rules.document import RuleSet

    stored = RuleSet.model_validate({"base_rate": 1, "categories": {"": 0}})
    result = evaluate(amount=10_000, items=(PurchaseItem("COFFEE", None, 10_000),),
                      occurred_local=datetime(2026, 11, 18, 12, tzinfo=SHANGHAI), currency="CNY",
                      contract_base_rate_micro=1_000_000, partner=stored, partner_scope="p", network=None, usage=None)
    assert [(line.rule, line.points) for line in result.lines] == [("base_rate", 100)]


@pytest.mark.parametrize("document", [
    'categories: {"": 0}',
    'campaigns: [{id: a, name: A, starts_on: 2026-01-01, ends_on: 2026-01-02, bonus_points: 5, categories: [""]}]',
])
def test_an_empty_category_name_is_refused(document):
    with pytest.raises(ValidationFailed) as refusal:
        parse(document)
    assert "category name is empty" in str(refusal.value)
