"""An activity's per-day cap counts the network day the activity occurred (the partner's `occurred_at`),
not the day the network received it (docs/earn-rules.md, "Activities")."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.partner_api.app import create_app
from shared.rules.store import set_rules
from tests.factories import verify_ok
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
