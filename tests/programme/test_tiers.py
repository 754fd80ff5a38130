"""Tiers: up at once on the earn that crosses a threshold, down only at the anniversary review."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from shared.ledger.events import Event
from shared.models import MemberTierHistory
from shared.programme import jobs, tiers
from shared.programme.tiers import current_tier, tier_view
from shared.rules.store import set_rules
from tests.conftest import START
from tests.db.test_history_plans import captured
from tests.factories import make_member, make_partner, verify_ok


def tier(network, member):
    return network.tx(lambda tx: current_tier(tx, member), readonly=True)


def history(network, member):
    rows = network.tx(lambda tx: tx.session.execute(
        select(MemberTierHistory).where(MemberTierHistory.member_id == member)
        .order_by(MemberTierHistory.at, MemberTierHistory.id)).scalars().all(), readonly=True)
    return [(row.from_tier, row.to_tier, row.reason, row.qualifying_points) for row in rows], rows


def gold_member(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "gold", points=500)
    assert tier(network, member) == "gold"
    return partner, member


def test_the_earn_that_crosses_a_threshold_upgrades_at_once(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    assert tier(network, member) == "regular"
    network.earn(partner, member, "e-1", points=60)
    assert tier(network, member) == "regular"
    crossing = network.earn(partner, member, "e-2", points=40)
    assert tier(network, member) == "silver"
    network.earn(partner, member, "e-3", points=1_900)  # straight past gold
    assert tier(network, member) == "platinum"
    changes, rows = history(network, member)
    assert changes == [("regular", "silver", "qualified", 100), ("silver", "platinum", "qualified", 2_000)]
    assert rows[0].entry_id == crossing["entry_id"] and rows[0].at == START
    view = network.tx(lambda tx: tier_view(tx, member), readonly=True)
    assert view["qualifying_points"] == 2_000 and view["next_tier"] is None
    assert view["review_at"] == (datetime(2027, 11, 20, 2, tzinfo=timezone.utc) + timedelta(days=30)).isoformat()
    verify_ok(network)


def test_bonuses_do_not_qualify_and_reversals_take_points_back(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.grant_bonus(member, 300, reason="welcome")
    network.earn(partner, member, "e-1", points=90)
    assert tier(network, member) == "regular"
    network.reverse(partner, "r-1", "e-1", points=40)
    network.earn(partner, member, "e-2", points=40)  # 90 - 40 + 40 = 90 < 100
    assert tier(network, member) == "regular"
    network.earn(partner, member, "e-3", points=10)
    assert tier(network, member) == "silver"


def test_no_downgrade_before_the_anniversary_and_its_grace(network, clock):
    _, member = gold_member(network)
    # the earn leaves the 12-month window at the anniversary; the tier stays through the grace period
    for moment in (START + timedelta(days=200), datetime(2027, 11, 20, 2, tzinfo=timezone.utc),
                   datetime(2027, 11, 20, 2, tzinfo=timezone.utc) + timedelta(days=30, seconds=-1)):
        clock.set(moment)
        assert jobs.review_tiers(network) == 0
        assert tier(network, member) == "gold"
    assert history(network, member)[0] == [("regular", "gold", "qualified", 500)]


def test_downgrade_at_anniversary_plus_grace_to_what_the_points_reach(network, clock):
    partner, member = gold_member(network)
    clock.set(START + timedelta(days=180))
    network.earn(partner, member, "half-year", points=150)  # still in the window at the review
    review = datetime(2027, 11, 20, 2, tzinfo=timezone.utc) + timedelta(days=30)
    clock.set(review)
    assert jobs.review_tiers(network) == 1
    assert tier(network, member) == "silver"
    changes, rows = history(network, member)
    assert changes[-1] == ("gold", "silver", "anniversary_review", 150) and rows[-1].at == review
    # the yearly rhythm goes on from the anniversary; a second run the same day does nothing
    assert jobs.review_tiers(network) == 0
    view = network.tx(lambda tx: tier_view(tx, member), readonly=True)
    assert view["review_at"] == (datetime(2028, 11, 20, 2, tzinfo=timezone.utc) + timedelta(days=30)).isoformat()
    clock.set(datetime(2028, 11, 20, 2, tzinfo=timezone.utc) + timedelta(days=30))
    assert jobs.review_tiers(network) == 1
    assert tier(network, member) == "regular"
    assert history(network, member)[0][-1] == ("silver", "regular", "anniversary_review", 0)
    assert network.tx(lambda tx: tier_view(tx, member), readonly=True)["review_at"] is None


def test_earning_back_during_the_grace_period_keeps_the_tier(network, clock):
    partner, member = gold_member(network)
    anniversary = datetime(2027, 11, 20, 2, tzinfo=timezone.utc)
    clock.set(anniversary + timedelta(days=10))
    network.earn(partner, member, "back", points=500)
    assert len(history(network, member)[0]) == 1  # already gold: no change
    clock.set(anniversary + timedelta(days=30))
    assert jobs.review_tiers(network) == 1
    assert tier(network, member) == "gold"
    assert len(history(network, member)[0]) == 1


def test_a_reversed_earn_costs_the_tier_only_at_the_review(network, clock):
    partner, member = gold_member(network)
    network.reverse(partner, "undo", "gold")
    assert tier(network, member) == "gold"
    clock.set(datetime(2027, 11, 20, 2, tzinfo=timezone.utc) + timedelta(days=30))
    jobs.review_tiers(network)
    assert tier(network, member) == "regular"


def test_an_earn_later_in_the_same_batch_gets_the_new_tier(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1\ntier_multipliers: {silver: '1.5'}"))
    first, second = network.post(partner, [Event("earn", "a", member, points=100),
                                           Event("earn", "b", member, amount=10_000)])
    assert [(line["rule"], line["points"]) for line in second["breakdown"]] == [("base_rate", 100),
                                                                                 ("tier:silver", 50)]
    assert tier(network, member) == "silver"


def test_an_activity_award_that_crosses_a_threshold_upgrades_at_once(network):
    """An award is an earn in the ledger (earn-rules.md): its points qualify, and the award that
    crosses a threshold upgrades in its own transaction, so the next earn gets the new tier."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1\ntier_multipliers: {silver: 2}\n"
                                                 "activities:\n  survey: {points: 150}\n"))
    award = network.activity(partner, member, "survey", "s-1")
    assert tier(network, member) == "silver"
    changes, rows = history(network, member)
    assert changes == [("regular", "silver", "qualified", 150)] and rows[0].entry_id == award["entry_id"]
    later = network.earn(partner, member, "p-1", amount=10_000)
    assert [(line["rule"], line["points"]) for line in later["breakdown"]] == [("base_rate", 100),
                                                                                ("tier:silver", 100)]
    # in one batch too: the earn after the award that crosses gold is computed at gold's rate (none: 1x)
    other = make_member(network, partner)
    network.earn(partner, other, "o-1", points=60)
    _, after = network.post(partner, [Event("activity", "s-2", other, activity="survey"),
                                      Event("earn", "o-2", other, amount=10_000)])
    assert tier(network, other) == "silver"
    assert [line["rule"] for line in after["breakdown"]] == ["base_rate", "tier:silver"]
    verify_ok(network)


def test_tiers_switched_off(network, settings):
    settings_off = settings.model_copy(update={"tiers": settings.tiers.model_copy(update={"enabled": False})})
    network.settings = network.db.settings = settings_off
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "big", points=5_000)
    assert tier(network, member) is None and history(network, member)[0] == []


def test_earns_at_the_top_tier_do_not_sum_the_window(network, monkeypatch):
    """An earn can only move a member up, so a top-tier member's earns skip summing its whole
    window of earns (the costliest read of an earn for the most active members)."""
    partner = make_partner(network)
    top, climber = make_member(network, partner), make_member(network, partner)
    network.earn(partner, top, "e-1", points=2_000)
    assert tier(network, top) == "platinum"
    summed = []
    real = tiers.qualifying_points
    monkeypatch.setattr(tiers, "qualifying_points", lambda tx, ids, *a, **k: summed.append(set(ids)) or real(tx, ids, *a, **k))
    network.earn(partner, top, "e-2", points=50)
    outcomes = network.post(partner, [Event(kind="earn", reference="b-1", member_id=top, points=10),
                                      Event(kind="earn", reference="b-2", member_id=climber, points=100)])
    assert all(isinstance(outcome, dict) for outcome in outcomes)
    assert summed == [{climber}]
    assert tier(network, top) == "platinum" and tier(network, climber) == "silver"
    network.reverse(partner, "r-1", "e-2", points=50)  # nothing to take back from a sum not made
    view = network.tx(lambda tx: tier_view(tx, top), readonly=True)
    assert view["qualifying_points"] == 2_010
    assert history(network, top)[0] == [("regular", "platinum", "qualified", 2_000)]
    verify_ok(network)


def test_an_erased_member_leaves_the_tier_review(network, clock):
    """The review reads members by anniversary; an erased one is never reviewed, so it has none."""
    _, member = gold_member(network)
    network.erase_member(member)
    clock.set(datetime(2028, 1, 1, tzinfo=timezone.utc))  # well past the anniversary and its grace
    assert jobs.review_tiers(network) == 0
    due = network.tx(lambda tx: tx.session.execute(
        select(tiers.members_t.c.id).where(tiers.members_t.c.tier_anniversary_at.is_not(None))).all(), readonly=True)
    assert due == []
    assert history(network, member)[0] == [("regular", "gold", "qualified", 500)]
    verify_ok(network)


def test_an_earn_reads_its_members_tier_with_the_members_lock(network):
    """One read of the member's row gives its balance (locked) and its tier: no second read."""
    partner = make_partner(network)
    member = make_member(network, partner)
    with captured(network, "tier_anniversary_at") as sent:
        network.earn(partner, member, "e1", points=500)
    reads = [statement for statement, _ in sent if statement.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1 and "available" in reads[0], reads
    assert tier(network, member) == "gold"
