"""Merging a duplicate member into a survivor: points, lots, holds, links and history move; the ledger verifies."""

import pytest
from sqlalchemy import select

from shared.errors import ActivityCapReached, UnknownMember, ValidationFailed
from shared.ledger.events import Event
from shared.ledger.queries import member_balance
from shared.models import MemberLink, MemberMerge, MemberTierHistory, Referral
from shared.programme import merge as merging
from shared.programme.merge import merge_members
from shared.programme.summary import member_summary
from shared.programme.tiers import current_tier
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner, verify_ok
from tests.interleave import Pause, overlap


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


def test_a_partner_linked_to_both_keeps_a_customer_ref_only_the_duplicates_link_had(network):
    """Q knows the person by its own id Q-42 only on the duplicate's link: the survivor's link has none, and
    the merge kept the survivor's link alone, dropping Q-42 (until 2026-12-07). Where both have one, the
    survivor's stays."""
    p, q, r = make_partner(network, "P"), make_partner(network, "Q"), make_partner(network, "R")
    survivor = network.enrol(p, phone="+8613900007777", customer_ref="P-1")["member_id"]
    for partner in (q, r):
        network.enrol(partner, link_token=network.mint_link_token(p, survivor)["link_token"],
                      customer_ref=None if partner == q else "R-1")
    duplicate = network.enrol(q, phone="+8613900008888", customer_ref="Q-42")["member_id"]
    network.enrol(r, link_token=network.mint_link_token(q, duplicate)["link_token"], customer_ref="R-2")
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    refs = dict(network.tx(lambda tx: tx.session.execute(select(MemberLink.partner_id, MemberLink.customer_ref)
                                                          .where(MemberLink.member_id == survivor)).all(), readonly=True))
    assert refs == {p: "P-1", q: "Q-42", r: "R-1"}
    verify_ok(network)


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


def referral_programme(network, partner):
    network.tx(lambda tx: set_rules(tx, partner, "referral: {bonus_points: 500}\n"))


def referrals(network):
    return network.tx(lambda tx: sorted((r.referee_member_id, r.referrer_member_id) for r in tx.session.execute(
        select(Referral)).scalars()), readonly=True)


def test_a_merged_referrer_still_gets_its_referral_bonus(network):
    partner = make_partner(network)
    referral_programme(network, partner)
    survivor, duplicate = make_member(network, partner), make_member(network, partner)
    referee = network.enrol(partner, phone="+8613900001111", referrer_member_id=duplicate)["member_id"]
    merge(network, survivor, duplicate)  # the referrer was enrolled twice
    result = network.earn(partner, referee, "first", points=10)
    assert result["referral_bonus"]["points"] == 500
    assert network.balance(survivor)["available"] == 500
    verify_ok(network)


def test_a_merged_referee_still_earns_its_referrer_the_bonus(network):
    partner = make_partner(network)
    referral_programme(network, partner)
    referrer = make_member(network, partner)
    duplicate = network.enrol(partner, phone="+8613900002222", referrer_member_id=referrer)["member_id"]
    survivor = make_member(network, partner)
    merge(network, survivor, duplicate)
    assert network.earn(partner, survivor, "first", points=10)["referral_bonus"]["points"] == 500
    assert network.balance(referrer)["available"] == 500
    assert "referral_bonus" not in network.earn(partner, survivor, "second", points=10)


def test_a_survivor_referred_already_keeps_its_own_referral(network):
    partner = make_partner(network)
    referral_programme(network, partner)
    first, second = make_member(network, partner), make_member(network, partner)
    survivor = network.enrol(partner, phone="+8613900003333", referrer_member_id=first)["member_id"]
    duplicate = network.enrol(partner, phone="+8613900004444", referrer_member_id=second)["member_id"]
    merge(network, survivor, duplicate)
    # one person, one referrer: the survivor's; the duplicate's referral stays with it, never paid
    assert (survivor, first) in referrals(network) and (duplicate, second) in referrals(network)
    network.earn(partner, survivor, "first", points=10)
    assert (network.balance(first)["available"], network.balance(second)["available"]) == (500, 0)


def test_a_paid_referral_of_the_duplicate_stops_the_survivors_pending_one(network):
    partner = make_partner(network)
    referral_programme(network, partner)
    first, second = make_member(network, partner), make_member(network, partner)
    survivor = network.enrol(partner, phone="+8613900005555", referrer_member_id=first)["member_id"]
    duplicate = network.enrol(partner, phone="+8613900006666", referrer_member_id=second)["member_id"]
    network.earn(partner, duplicate, "d-first", points=10)  # pays the duplicate's referrer
    merge(network, survivor, duplicate)
    # the person has earned one referrer its bonus already: no second one
    assert "referral_bonus" not in network.earn(partner, survivor, "s-first", points=10)
    assert (network.balance(first)["available"], network.balance(second)["available"]) == (0, 500)
    assert survivor not in {referee for referee, _ in referrals(network)}


@pytest.mark.parametrize("paid_first", [True, False], ids=["paid-then-pending", "pending-then-paid"])
def test_one_person_earns_one_referrer_one_bonus_over_two_merges(network, paid_first):
    partner = make_partner(network)
    referral_programme(network, partner)
    x, z, survivor = (make_member(network, partner) for _ in range(3))
    paid = network.enrol(partner, phone="+8613900005551", referrer_member_id=x)["member_id"]
    pending = network.enrol(partner, phone="+8613900005552", referrer_member_id=z)["member_id"]
    network.earn(partner, paid, "paid-first", points=10)  # pays x its bonus
    for duplicate in ((paid, pending) if paid_first else (pending, paid)):
        merge(network, survivor, duplicate)
    assert "referral_bonus" not in network.earn(partner, survivor, "s-first", points=10)
    assert (network.balance(x)["available"], network.balance(z)["available"]) == (500, 0)
    assert survivor not in {referee for referee, _ in referrals(network)}
    verify_ok(network)


def test_a_survivor_holding_a_paid_referral_merged_into_a_referred_member_pays_no_second_bonus(network):
    partner = make_partner(network)
    referral_programme(network, partner)
    x, y, middle = (make_member(network, partner) for _ in range(3))
    paid = network.enrol(partner, phone="+8613900005553", referrer_member_id=x)["member_id"]
    last = network.enrol(partner, phone="+8613900005554", referrer_member_id=y)["member_id"]
    network.earn(partner, paid, "paid-first", points=10)  # pays x its bonus
    merge(network, middle, paid)  # the middle record has no referral of its own: the paid one stays with `paid`
    merge(network, last, middle)  # the person's referral was paid: the last survivor's pending one is dropped
    assert "referral_bonus" not in network.earn(partner, last, "last-first", points=10)
    assert (network.balance(x)["available"], network.balance(y)["available"]) == (500, 0)
    assert last not in {referee for referee, _ in referrals(network)}
    verify_ok(network)


def test_a_referral_between_the_two_records_is_no_referral(network):
    partner = make_partner(network)
    referral_programme(network, partner)
    survivor = make_member(network, partner)
    duplicate = network.enrol(partner, phone="+8613900007777", referrer_member_id=survivor)["member_id"]
    merge(network, survivor, duplicate)  # the person referred itself
    assert "referral_bonus" not in network.earn(partner, survivor, "first", points=10)
    assert referrals(network) == [(duplicate, survivor)]
    # and the other way round: a survivor referred by its duplicate
    duplicate = make_member(network, partner)
    survivor = network.enrol(partner, phone="+8613900008888", referrer_member_id=duplicate)["member_id"]
    merge(network, survivor, duplicate)
    assert "referral_bonus" not in network.earn(partner, survivor, "first-2", points=10)
    assert network.balance(survivor)["available"] == 10
    verify_ok(network)


def test_per_member_activity_caps_count_the_duplicates_awards(network, clock):
    partner = make_partner(network)
    network.tx(lambda tx: set_rules(tx, partner, "activities:\n  signup: {points: 200, per_member_total: 1}\n"
                                    "  survey: {points: 50, per_member_per_day: 1, per_member_total: 2}\n"))
    survivor, duplicate = make_member(network, partner), make_member(network, partner)
    network.activity(partner, duplicate, "signup", "d-signup")
    network.activity(partner, duplicate, "survey", "d-survey")
    merge(network, survivor, duplicate)
    with pytest.raises(ActivityCapReached):
        network.activity(partner, survivor, "signup", "s-signup")  # one person, signed up already
    # docs/programme.md: nothing posts to the merged-away id (it is not read as its survivor, whose caps
    # would then be counted under the old id); the survivor's caps count the duplicate's awards (moved),
    # in a batch naming both ids too, whichever comes first
    with pytest.raises(UnknownMember):
        network.activity(partner, duplicate, "survey", "d-survey-2")
    outcomes = network.post(partner, [
        Event("activity", "b-d-signup", duplicate, activity="signup"),
        Event("activity", "b-s-signup", survivor, activity="signup"),
        Event("activity", "b-d-survey", duplicate, activity="survey"),
        Event("activity", "b-s-survey", survivor, activity="survey"),
    ])
    assert [type(outcome) for outcome in outcomes] == [UnknownMember, ActivityCapReached, UnknownMember,
                                                        ActivityCapReached]
    assert [outcome.extra["cap_name"] for outcome in outcomes[1::2]] == ["per_member_total", "per_member_per_day"]
    clock.advance(days=1)  # the duplicate's survey was yesterday's: one more today, then the total is reached
    outcomes = network.post(partner, [Event("activity", "n-d-survey", duplicate, activity="survey"),
                                      Event("activity", "n-s-survey", survivor, activity="survey")])
    assert isinstance(outcomes[0], UnknownMember) and outcomes[1]["member_id"] == survivor
    clock.advance(days=1)
    with pytest.raises(ActivityCapReached) as refused:
        network.activity(partner, survivor, "survey", "s-survey-3")
    assert refused.value.extra["cap_name"] == "per_member_total"
    assert network.balance(survivor)["available"] == 300
    assert network.balance(duplicate)["available"] == 0
    verify_ok(network)


# -- a merge running at the same time as the partner acts on the duplicate's entries and holds --------
# (the reviewers' race, tests/_review_mem/test_merge_concurrent.py: the posting reads the duplicate as
# the owner, waits for the merge's lock on it, and must then act on the survivor it never asked for)

def points(network, member) -> dict:
    balance = network.balance(member)
    return {"available": balance["available"], "held": balance["held"]}


def _overlapping_merge(network, monkeypatch, survivor, duplicate, second):
    """Run the merge up to just after it locked both members, then ``second``; both end."""
    pause = Pause().after(monkeypatch, merging, "lock_members")
    both = overlap(lambda: merge(network, survivor, duplicate), second, pause)
    assert isinstance(both.first, dict), both.first
    assert both.second_waited, "the posting did not wait for the merge: no race was made"
    return both.second


@pytest.fixture
def racing(network):
    """Books' members: the survivor, the duplicate (300 earned, 100 of them held, 40 burnt) and another."""
    books = make_partner(network, "Books")
    members = sorted(make_member(network, books) for _ in range(3))
    return books, members


def _arrange(network, books, survivor, duplicate):
    network.earn(books, duplicate, "d-earn", points=300)
    network.burn(books, duplicate, "d-burn", 40)
    return network.hold(books, duplicate, "d-hold", points=100)["hold_id"]


OPERATIONS = {
    "capture": (lambda network, books, hold: network.capture(books, hold, 60), {"available": 200, "held": 0}),
    "void": (lambda network, books, hold: network.void(books, hold), {"available": 260, "held": 0}),
    "reversal of an earn": (lambda network, books, hold: network.reverse(books, "d-earn-r", "d-earn", points=50),
                            {"available": 110, "held": 100}),
    "reversal of a burn": (lambda network, books, hold: network.reverse(books, "d-burn-r", "d-burn"),
                           {"available": 200, "held": 100}),
}


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("survivor_sorts", ["first", "last"])
def test_the_duplicates_hold_or_entry_acted_on_during_a_merge_acts_on_the_survivor(
        network, monkeypatch, racing, operation, survivor_sorts):
    """docs/programme.md: captures, voids and later reversals of the duplicate's entries act on the
    survivor — also when the merge commits while the partner's request waits for it."""
    books, members = racing
    survivor, duplicate = (members[0], members[1]) if survivor_sorts == "first" else (members[2], members[1])
    hold = _arrange(network, books, survivor, duplicate)
    act, balance = OPERATIONS[operation]
    outcome = _overlapping_merge(network, monkeypatch, survivor, duplicate, lambda: act(network, books, hold))
    assert isinstance(outcome, dict), f"{operation} refused: {outcome!r}"
    assert outcome["member_id"] == survivor
    assert points(network, survivor) == balance
    assert points(network, duplicate) == {"available": 0, "held": 0}
    verify_ok(network)


@pytest.mark.parametrize("survivor_sorts", ["first", "last"])
def test_a_batch_waiting_for_a_merge_locks_the_survivor_in_order_with_its_other_members(
        network, monkeypatch, racing, survivor_sorts):
    """A batch that captures the duplicate's hold and earns for another member locked both before it
    learnt of the survivor; whether the survivor's id sorts before the other member's (its lock then
    comes out of the global order: the batch starts its locks again, in order) or after it, the capture
    acts on the survivor and the earn posts."""
    books, members = racing
    if survivor_sorts == "first":
        survivor, duplicate, other = members
    else:
        other, duplicate, survivor = members
    hold = _arrange(network, books, survivor, duplicate)
    outcome = _overlapping_merge(network, monkeypatch, survivor, duplicate, lambda: network.post(books, [
        Event("capture", None, hold_id=hold, points=60), Event("earn", "o-earn", other, points=5)]))
    assert isinstance(outcome, list), outcome
    captured, earned = outcome
    assert isinstance(captured, dict), f"capture refused: {captured!r}"
    assert isinstance(earned, dict), f"earn refused: {earned!r}"
    assert captured["member_id"] == survivor and earned["member_id"] == other
    assert points(network, survivor) == {"available": 200, "held": 0}
    assert points(network, other) == {"available": 5, "held": 0}
    verify_ok(network)


def _cycle_days(network):
    from shared.models import Cycle

    return network.tx(lambda tx: list(tx.session.scalars(select(Cycle.cycle_date).order_by(Cycle.cycle_date))),
                      readonly=True)


def test_a_merge_on_a_network_without_an_entry_makes_no_cycle(network, clock):
    """A merge that moves no points writes no entry: on a network without a single entry it leaves no
    ``cycles`` row behind. Such a row, before the network's first cycle, is never settled (settlement
    starts at the first entry's day) and stays open: the settlement of every later cycle then keeps no
    ledger position (each recounts the whole ledger), and reports list it as unsettled for ever."""
    from datetime import date

    from shared.models import CyclePosition

    partner = make_partner(network, "Coffee")
    survivor, duplicate = make_member(network, partner), make_member(network, partner)
    done = merge(network, survivor, duplicate)
    assert done["entry_id"] is None and done["available"] == 0
    assert _cycle_days(network) == []
    clock.advance(days=2)
    network.earn(partner, survivor, "first", points=5)
    assert _cycle_days(network) == [date(2026, 11, 22)]
    clock.advance(days=1)
    network.settle(date(2026, 11, 22))
    kept = network.tx(lambda tx: list(tx.session.scalars(select(CyclePosition.cycle_date))), readonly=True)
    assert kept == [date(2026, 11, 22)]
    verify_ok(network)


def test_a_merge_that_moves_points_still_posts_into_the_open_cycle(network, clock):
    from datetime import date

    partner = make_partner(network, "Coffee")
    survivor, duplicate = make_member(network, partner), make_member(network, partner)
    network.earn(partner, duplicate, "d-1", points=30)
    clock.advance(days=1)
    done = merge(network, survivor, duplicate)
    assert done["entry_id"] is not None and done["available"] == 30
    assert _cycle_days(network) == [date(2026, 11, 20), date(2026, 11, 21)]
    verify_ok(network)


def test_a_merge_that_looked_before_the_first_entry_enters_the_cycle_when_it_finds_points(network, monkeypatch):
    """The network's first entry, an earn for the duplicate, commits after the merge looked for an entry
    and before its locks (PostgreSQL; on SQLite the one writer makes the earn wait for the merge): the
    merge moves those points after all, and enters the open cycle for it, under the closed-cycle guard."""
    from datetime import date

    partner = make_partner(network, "Coffee")
    survivor, duplicate = make_member(network, partner), make_member(network, partner)
    entered = []

    def spy(tx):
        entered.append(tx.now)
        return original(tx)

    original = merging.enter_open_cycle
    monkeypatch.setattr(merging, "enter_open_cycle", spy)
    pause = Pause().after(monkeypatch, merging, "enter_open_cycle_once_posted")
    both = overlap(lambda: merge(network, survivor, duplicate),
                   lambda: network.earn(partner, duplicate, "first", points=30), pause)
    assert isinstance(both.first, dict), both.first
    if both.second_waited:  # the earn came after the merge: the duplicate is the survivor's now
        assert isinstance(both.second, UnknownMember), both.second
        assert both.first["available"] == 0 and entered == [] and _cycle_days(network) == []
    else:
        assert isinstance(both.second, dict), both.second
        assert both.first["available"] == 30 and both.first["entry_id"] is not None and len(entered) == 1
        assert points(network, survivor) == {"available": 30, "held": 0}
        assert _cycle_days(network) == [date(2026, 11, 20)]
    verify_ok(network)


def test_a_tier_the_duplicate_holds_keeps_its_dates_when_the_joint_points_reach_only_it(network, pair, clock):
    """The person reached gold as the duplicate; the merge reaches no higher tier, so the survivor keeps
    gold since then, reviewed on that anniversary (programme.md). It was made gold anew at the merge:
    its review moved a year past the merge, the tier kept up to a year too long."""
    from shared.models import Member

    coffee, books, survivor, duplicate, _hold = pair

    def dates(member):
        return network.tx(lambda tx: (lambda m: (m.tier, m.tier_since, m.tier_anniversary_at))(
            tx.session.get(Member, member)), readonly=True)

    tier, since, anniversary = dates(duplicate)
    assert tier == "gold"
    clock.advance(days=300)
    merge(network, survivor, duplicate)
    assert dates(survivor) == ("gold", since, anniversary)


def test_a_tier_above_both_records_is_reached_at_the_merge(network, clock):
    coffee = make_partner(network, "Coffee")
    survivor, duplicate = make_member(network, coffee), make_member(network, coffee)
    network.earn(coffee, survivor, "s-1", points=300)  # silver on the small ladder
    network.earn(coffee, duplicate, "d-1", points=300)  # silver; together 600: gold
    clock.advance(days=10)
    merge(network, survivor, duplicate)
    from shared.models import Member

    member = network.tx(lambda tx: tx.session.get(Member, survivor), readonly=True)
    assert (member.tier, member.tier_since) == ("gold", clock.now())
