"""Activity points: POST /v1/activities awards points for non-purchase actions from the partner's rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.errors import ValidationFailed
from tests.factories import make_member, make_partner, verify_ok
from tests.partner_api.conftest import assert_problem, enrol, entry_count
from tests.programme_limits.conftest import lines_of, rules

SHANGHAI = timezone(timedelta(hours=8))
ACTIVITIES = """
activities:
  survey: {points: 50, per_member_per_day: 1, per_member_total: 2}
  check-in: {points: 5}
"""


@pytest.fixture
def member(shop, network) -> str:
    rules(network, shop.partner_id, ACTIVITIES)
    return enrol(shop)


def award(shop, member: str, reference: str, activity: str = "survey", **kwargs):
    return shop.call("POST", "/v1/activities", {"member_id": member, "activity": activity, "reference": reference},
                     **kwargs)


def test_an_activity_awards_its_points_as_a_partner_funded_lot(shop, member):
    response = award(shop, member, "survey-1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["kind"], body["activity"], body["points"], body["reference"]) == ("earn", "survey", 50, "survey-1")
    assert [lot["funded_by"] for lot in body["lots"]] == [shop.partner_id]
    assert body["balance"] == {"available": 50, "held": 0}
    history = shop.ok("GET", f"/v1/members/{member}/history")["movements"]
    assert [(m["kind"], m["available_change"]) for m in history] == [("earn", 50)]


def test_caps_per_member_per_day_and_in_all(shop, member, network, clock):
    assert award(shop, member, "s-1").status_code == 200
    problem = assert_problem(award(shop, member, "s-2"), 409, "activity_cap_reached")
    assert (problem["activity"], problem["cap_name"], problem["cap"]) == ("survey", "per_member_per_day", 1)
    clock.set(datetime(2026, 11, 21, 0, 0, tzinfo=SHANGHAI))  # next network day
    assert award(shop, member, "s-3").status_code == 200
    clock.advance(days=1)
    problem = assert_problem(award(shop, member, "s-4"), 409, "activity_cap_reached")
    assert problem["cap_name"] == "per_member_total"
    # other activities and other members have their own counts
    for n in range(3):
        assert award(shop, member, f"c-{n}", "check-in").status_code == 200
    assert award(shop, enrol(shop), "other-1").status_code == 200
    assert shop.ok("GET", f"/v1/members/{member}")["balance"]["available"] == 115
    verify_ok(network)


def test_an_unknown_activity_is_refused_and_can_be_retried_with_the_same_key(shop, member):
    assert_problem(award(shop, member, "x-1", "quiz", idempotency_key="A-1"), 422, "unknown_activity")
    ok = award(shop, member, "x-1", "check-in", idempotency_key="A-2")
    assert ok.status_code == 200


def test_a_partner_without_activities_has_none(partners):
    other = partners("No activities")
    assert_problem(award(other, enrol(other), "x"), 422, "unknown_activity")


def test_exactly_once_by_key_and_by_reference(shop, member, network):
    first = award(shop, member, "once", idempotency_key="K")
    again = award(shop, member, "once", idempotency_key="K")
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == first.json()
    by_reference = award(shop, member, "once")  # a new key, same reference and content: the original result
    assert by_reference.json()["transaction_id"] == first.json()["transaction_id"]
    assert_problem(award(shop, member, "once", "check-in"), 409, "reference_conflict")
    assert shop.ok("GET", f"/v1/members/{member}")["balance"]["available"] == 50


def test_an_activity_is_reversible_like_an_earn_and_its_cap_is_not_given_back(shop, member, network):
    award(shop, member, "s-1")
    reversal = shop.ok("POST", "/v1/reversals", {"reference": "r-1", "original_reference": "s-1"})
    assert reversal["points"] == 50 and reversal["balance"]["available"] == 0
    assert_problem(award(shop, member, "s-2"), 409, "activity_cap_reached")
    verify_ok(network)


def test_activity_points_count_toward_velocity_limits(shop, member, network, limits):
    limits(member_daily_earn=60)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 10})
    assert award(shop, member, "s-1").status_code == 200
    problem = assert_problem(award(shop, member, "c-1", "check-in"), 422, "velocity_limit_exceeded")
    assert problem["used"] == 60
    assert_problem(shop.call("POST", "/v1/earn", {"member_id": member, "reference": "e-2", "points": 1}),
                   422, "velocity_limit_exceeded")


def test_activities_pay_the_issuance_fee_like_an_earn(network):
    partner = make_partner(network, issuance_fee="0.1")
    rules(network, partner, ACTIVITIES)
    member = make_member(network, partner)
    result = network.activity(partner, member, "survey", "s-1")
    assert lines_of(network, result["entry_id"]) == [(partner, "network", "issuance_fee", 50)]
    assert result["activity"] == "survey" and result["points"] == 50
    verify_ok(network)


def test_activity_requests_are_validated(shop, member):
    assert_problem(shop.call("POST", "/v1/activities", {"member_id": member, "reference": "r"}),
                   422, "validation_failed")
    assert_problem(shop.call("POST", "/v1/activities", {"member_id": member, "reference": "r",
                                                       "activity": "survey", "points": 5}),
                   422, "validation_failed")
    assert_problem(award(shop, "mem_nobody", "r"), 404, "unknown_member")


@pytest.mark.parametrize("document, message", [
    ("activities: {survey: {points: 0}}", "activities.survey.points"),
    ("activities: {Survey!: {points: 5}}", "activity name 'Survey!'"),
    ("activities: {survey: {points: 5, per_member_per_day: 3, per_member_total: 2}}",
     "per_member_per_day cannot exceed per_member_total"),
    ("activities: {survey: {points: 5, bonus: 1}}", "activities.survey.bonus"),
])
def test_activity_documents_are_validated_with_clear_errors(network, document, message):
    partner = make_partner(network)
    with pytest.raises(ValidationFailed, match=message.replace("!", "\\!")):
        rules(network, partner, document)


def test_network_rules_hold_no_activities(network):
    with pytest.raises(ValidationFailed, match="activities belong to partners"):
        rules(network, "network", "activities: {survey: {points: 5}}")


def test_entry_count_is_unchanged_by_refusals(shop, member, network):
    award(shop, member, "s-1")
    before = entry_count(network)
    award(shop, member, "s-2")
    award(shop, member, "s-3", "nope")
    assert entry_count(network) == before
