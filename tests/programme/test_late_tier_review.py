"""A tier review run late (the clearing worker was down) decides as the review on time would have:
on the qualifying points of the window ending at the moment it was due (anniversary + grace)."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from shared.models import MemberTierHistory
from shared.programme import jobs
from shared.programme.tiers import current_tier, qualifying_points
from tests.conftest import START
from tests.db.test_history_plans import captured
from tests.factories import make_member, make_partner, verify_ok

ANNIVERSARY = datetime(2027, 11, 20, 2, tzinfo=timezone.utc)  # a year after START, network time


def tier(network, member):
    return network.tx(lambda tx: current_tier(tx, member), readonly=True)


def changes(network, member):
    return network.tx(lambda tx: [(r.from_tier, r.to_tier, r.reason, r.qualifying_points) for r in
                                  tx.session.execute(select(MemberTierHistory).where(
                                      MemberTierHistory.member_id == member)
                                      .order_by(MemberTierHistory.at, MemberTierHistory.id)).scalars()],
                      readonly=True)


def test_a_review_three_days_late_keeps_a_member_who_qualified_when_it_was_due(network, clock, settings):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "up", points=100)
    clock.advance(days=31)
    network.earn(partner, member, "keep", points=100)  # in the window ending at the review, not 3 days later
    due = ANNIVERSARY + timedelta(days=settings.tiers.grace_days)
    clock.set(due + timedelta(days=3))
    assert network.tx(lambda tx: qualifying_points(tx, [member]), readonly=True).get(member, 0) == 0
    assert jobs.review_tiers(network) == 1
    assert tier(network, member) == "silver"
    assert changes(network, member) == [("regular", "silver", "qualified", 100)]
    assert jobs.review_tiers(network) == 0  # the next review is a year after the anniversary


def test_members_due_at_different_moments_are_each_judged_on_their_own_window_in_one_pass(network, clock, settings):
    partner = make_partner(network)
    early, late, reversed_ = (make_member(network, partner) for _ in range(3))
    network.earn(partner, early, "early-up", points=100)
    network.earn(partner, reversed_, "reversed-up", points=100)
    clock.set(START + timedelta(days=2))
    network.earn(partner, late, "late-up", points=100)  # its anniversary, review and window are 2 days later
    clock.set(START + timedelta(days=31))
    for member in (early, late):
        network.earn(partner, member, f"{member}-keep", points=100)  # in early's window, before late's
    network.earn(partner, reversed_, "reversed-keep", points=150)
    clock.set(START + timedelta(days=40))
    network.reverse(partner, "reversed-return", "reversed-keep", points=60)  # 90 left: below silver
    grace = timedelta(days=settings.tiers.grace_days)
    due = {early: ANNIVERSARY + grace, reversed_: ANNIVERSARY + grace, late: ANNIVERSARY + timedelta(days=2) + grace}
    clock.set(due[late] + timedelta(days=3))
    with captured(network, "occurred_at") as sums:
        assert jobs.review_tiers(network) == 3
    assert (tier(network, early), tier(network, late), tier(network, reversed_)) == ("silver", "regular", "regular")
    assert len(sums) == 2, "one sum and one read between the window starts for the batch, not one per member"
    assert changes(network, late)[-1] == ("silver", "regular", "anniversary_review", 0)
    assert changes(network, reversed_)[-1] == ("silver", "regular", "anniversary_review", 90)
    for member, at in due.items():  # each as the review on time summed it
        expected = network.tx(lambda tx: qualifying_points(tx, [member], at), readonly=True).get(member, 0)
        assert expected == {early: 100, late: 0, reversed_: 90}[member]
    verify_ok(network)


def test_points_earned_while_the_review_was_late_count_as_they_would_have_upgraded_at_once(network, clock, settings):
    """On time, the review would have moved the member down and the earn after it back up at once;
    late, the same earn keeps the tier."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "up", points=100)
    due = ANNIVERSARY + timedelta(days=settings.tiers.grace_days)
    clock.set(due + timedelta(days=1))
    network.earn(partner, member, "after", points=100)
    clock.set(due + timedelta(days=3))
    assert jobs.review_tiers(network) == 1
    assert tier(network, member) == "silver"


def test_a_reversal_posted_after_the_review_was_due_does_not_downgrade_at_a_late_review(network, clock, settings):
    """On time the review keeps silver (100 qualifying points at its due moment) and a reversal after it
    never downgrades at once; late, the review counts no reversal posted after its due moment either."""
    network.settings.expiry_policy = "never"  # the points reversed a year on are still there
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "up", points=100)
    clock.advance(days=31)
    network.earn(partner, member, "keep", points=100)  # in the window ending at the due moment
    due = ANNIVERSARY + timedelta(days=settings.tiers.grace_days)
    clock.set(due + timedelta(days=1))
    network.reverse(partner, "return", "keep", points=60)  # after the due moment
    clock.set(due + timedelta(days=3))
    assert jobs.review_tiers(network) == 1
    assert tier(network, member) == "silver"
    assert changes(network, member) == [("regular", "silver", "qualified", 100)]


def test_reversals_count_for_each_member_up_to_its_own_due_moment_in_one_pass(network, clock, settings):
    """Members due at different moments, reviewed together: a reversal posted between the two due
    moments downgrades the member due after it, not the one due before it; one posted before both
    counts for both, and one posted after both for neither."""
    network.settings.expiry_policy = "never"
    partner = make_partner(network)
    early, late, both, neither = (make_member(network, partner) for _ in range(4))
    for member in (early, both, neither):
        network.earn(partner, member, f"{member}-up", points=100)
    clock.set(START + timedelta(days=2))
    network.earn(partner, late, "late-up", points=100)  # its anniversary and review are 2 days later
    clock.set(START + timedelta(days=31))  # in early's window, before late's
    for member in (early, both):
        network.earn(partner, member, f"{member}-keep", points=100)
    clock.set(START + timedelta(days=33))  # in both windows
    for member in (late, neither):
        network.earn(partner, member, f"{member}-keep", points=100)
    grace = timedelta(days=settings.tiers.grace_days)
    due = {early: ANNIVERSARY + grace, both: ANNIVERSARY + grace, neither: ANNIVERSARY + grace,
           late: ANNIVERSARY + timedelta(days=2) + grace}
    clock.set(due[both] - timedelta(hours=1))
    network.reverse(partner, "both-return", f"{both}-keep", points=60)  # before either moment
    clock.set(due[early] + timedelta(days=1))  # between the two moments
    for member in (early, late):
        network.reverse(partner, f"{member}-return", f"{member}-keep", points=60)
    clock.set(due[late] + timedelta(days=1))
    network.reverse(partner, "neither-return", f"{neither}-keep", points=60)  # after both
    clock.set(due[late] + timedelta(days=3))
    with captured(network, "occurred_at") as sums:
        assert jobs.review_tiers(network) == 4
    assert len(sums) == 2, "one sum and one read of what lies between the moments for the batch"
    assert {m: tier(network, m) for m in due} == {early: "silver", late: "regular", both: "regular",
                                                  neither: "silver"}
    assert changes(network, late)[-1] == ("silver", "regular", "anniversary_review", 40)
    assert changes(network, both)[-1] == ("silver", "regular", "anniversary_review", 40)
    verify_ok(network)


def test_a_review_missed_for_more_than_a_year_decides_on_the_last_one_due(network, clock, settings):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "up", points=100)
    clock.advance(days=31)
    network.earn(partner, member, "keep", points=100)  # kept the tier at the first review, not at the second
    grace = timedelta(days=settings.tiers.grace_days)
    second = datetime(2028, 11, 20, 2, tzinfo=timezone.utc)
    clock.set(second + grace + timedelta(days=3))
    network.earn(partner, member, "late-keep", points=60)  # in the window of the second review: not enough
    assert jobs.review_tiers(network) == 1
    assert changes(network, member)[-1] == ("silver", "regular", "anniversary_review", 60)
