"""An activity's per-day cap counts the network day the activity occurred (the partner's `occurred_at`),
not the day the network received it (docs/earn-rules.md, "Activities")."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.partner_api.app import create_app
from shared.errors import ActivityCapReached
from shared.ledger.events import Event
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner, verify_ok
from tests.partner_api.conftest import Partner, Server, assert_problem, enrol

SHANGHAI = timezone(timedelta(hours=8))
RULES = "activities:\n  check-in: {points: 5, per_member_per_day: 1}\n"


@pytest.fixture
def shop(network):
    """A partner with a check-in activity, talking to the partner API as a partner does (signed)."""
    with Server(create_app(network)) as api:
        partner = Partner(network, api, "Coffee Shop")
        network.tx(lambda tx: set_rules(tx, partner.partner_id, RULES))
        yield partner
        partner.close()


def check_in(shop, member: str, reference: str, occurred_at: datetime | None = None):
    body = {"member_id": member, "activity": "check-in", "reference": reference}
    if occurred_at is not None:
        body["occurred_at"] = occurred_at.isoformat()
    return shop.call("POST", "/v1/activities", body)


def test_a_check_in_posted_after_midnight_counts_on_the_day_it_occurred(network, clock, shop):
    """Asia/Shanghai network, one check-in per member per day. A check-in at 23:50 on the 20th that the
    offline POS posts at 00:05 on the 21st is the 20th's: the member's check-in at 10:00 on the 21st is
    the first of that day, and a second one for the evening of the 20th is refused."""
    member = enrol(shop)
    clock.set(datetime(2026, 11, 21, 0, 5, tzinfo=SHANGHAI))
    late = check_in(shop, member, "ci-20", datetime(2026, 11, 20, 23, 50, tzinfo=SHANGHAI))
    assert late.status_code == 200 and late.json()["points"] == 5, late.text
    clock.set(datetime(2026, 11, 21, 10, 0, tzinfo=SHANGHAI))
    today = check_in(shop, member, "ci-21")
    assert today.status_code == 200 and today.json()["points"] == 5, today.text
    # the 20th already has its check-in, though it reaches the network on the 21st
    again = check_in(shop, member, "ci-20-again", datetime(2026, 11, 20, 23, 55, tzinfo=SHANGHAI))
    problem = assert_problem(again, 409, "activity_cap_reached")
    assert problem["cap_name"] == "per_member_per_day"
    # and the 21st has its own: a second check-in that day is refused too
    assert_problem(check_in(shop, member, "ci-21-again", datetime(2026, 11, 21, 9, 0, tzinfo=SHANGHAI)),
                   409, "activity_cap_reached")
    assert shop.ok("GET", f"/v1/members/{member}")["balance"]["available"] == 10
    verify_ok(network)


def test_two_check_ins_of_one_evening_get_one_award_when_the_second_arrives_after_midnight(clock, shop):
    member = enrol(shop)
    clock.set(datetime(2026, 11, 20, 23, 40, tzinfo=SHANGHAI))
    assert check_in(shop, member, "ci-1").status_code == 200
    clock.set(datetime(2026, 11, 21, 0, 10, tzinfo=SHANGHAI))
    problem = assert_problem(check_in(shop, member, "ci-2", datetime(2026, 11, 20, 23, 45, tzinfo=SHANGHAI)),
                             409, "activity_cap_reached")
    assert problem["cap_name"] == "per_member_per_day"
    assert shop.ok("GET", f"/v1/members/{member}")["balance"]["available"] == 5


# -- several days in one unit (Network.post): each award counts against its own day's cap ----------

def _check_in_partner(network) -> tuple[str, str]:
    partner = make_partner(network)
    network.tx(lambda tx: set_rules(tx, partner, RULES + "  survey: {points: 50}\n"))
    return partner, make_member(network, partner)


def _balance(network, member: str) -> int:
    return network.balance(member)["available"]


def test_a_backdated_award_in_a_unit_that_starts_with_another_day_keeps_its_days_cap(network, clock):
    partner, member = _check_in_partner(network)
    clock.set(datetime(2026, 11, 21, 0, 30, tzinfo=SHANGHAI))
    network.activity(partner, member, "check-in", "y-1", occurred_at=datetime(2026, 11, 20, 23, 0, tzinfo=SHANGHAI))
    with pytest.raises(ActivityCapReached):  # alone: refused
        network.activity(partner, member, "check-in", "y-2",
                         occurred_at=datetime(2026, 11, 20, 23, 30, tzinfo=SHANGHAI))
    survey, late = network.post(partner, [
        Event("activity", "s-1", member, activity="survey"),  # today's (the 21st): read first
        Event("activity", "y-3", member, activity="check-in", occurred_at=datetime(2026, 11, 20, 23, 30,
                                                                                     tzinfo=SHANGHAI))])
    assert survey["points"] == 50, survey
    assert isinstance(late, ActivityCapReached) and late.extra["cap_name"] == "per_member_per_day", late
    # the 21st's check-in is still free, and the 20th's still refused, in a further unit
    today, again = network.post(partner, [
        Event("activity", "t-1", member, activity="check-in"),
        Event("activity", "y-4", member, activity="check-in", occurred_at=datetime(2026, 11, 20, 23, 40,
                                                                                     tzinfo=SHANGHAI))])
    assert today["points"] == 5 and isinstance(again, ActivityCapReached), (today, again)
    assert _balance(network, member) == 5 + 50 + 5
    verify_ok(network)


def test_yesterdays_check_in_then_todays_in_one_unit_are_both_awarded(network, clock):
    partner, member = _check_in_partner(network)
    clock.set(datetime(2026, 11, 21, 0, 30, tzinfo=SHANGHAI))
    late, today, twice = network.post(partner, [
        Event("activity", "y-1", member, activity="check-in", occurred_at=datetime(2026, 11, 20, 23, 50,
                                                                                     tzinfo=SHANGHAI)),
        Event("activity", "t-1", member, activity="check-in"),
        Event("activity", "t-2", member, activity="check-in")])
    assert late["points"] == 5 and today["points"] == 5, (late, today)
    assert isinstance(twice, ActivityCapReached) and twice.extra["cap_name"] == "per_member_per_day", twice
    assert _balance(network, member) == 10
    verify_ok(network)
