"""Velocity limits: a member's points earned and spent per network day, a partner's issuance per day.

Called the way a partner calls the API (signed requests to a real server); the refusal is a
problem+json with a stable code, raises an operator alert, and posts nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared.errors import VelocityLimitExceeded
from shared.ledger.events import Event
from tests.db.test_history_plans import captured
from tests.factories import make_member, make_partner, verify_ok
from tests.partner_api.conftest import assert_problem, enrol, entry_count
from tests.programme_limits.conftest import alerts, entries, rules

SHANGHAI = timezone(timedelta(hours=8))


def balance(partner, member: str) -> int:
    return partner.ok("GET", f"/v1/members/{member}")["balance"]["available"]


def test_an_earn_over_the_members_daily_limit_is_refused_with_an_alert_and_posts_nothing(shop, network, limits):
    limits(member_daily_earn=1000)
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 600})
    before = entry_count(network)

    refused = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "e-2", "points": 401})

    problem = assert_problem(refused, 422, "velocity_limit_exceeded")
    assert (problem["limit_name"], problem["limit"], problem["used"], problem["remaining"]) == (
        "member_daily_earn", 1000, 600, 400)
    assert problem["business_day"] == "2026-11-20"
    assert entry_count(network) == before and balance(shop, member) == 600
    [alert] = alerts(network)
    assert (alert["partner_id"], alert["member_id"], alert["count"]) == (shop.partner_id, member, 1)
    assert alert["detail"]["limit_name"] == "member_daily_earn" and alert["detail"]["asked"] == 401
    # exactly up to the limit is allowed
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-3", "points": 400})
    assert balance(shop, member) == 1000
    verify_ok(network)


def test_the_refusal_is_stored_for_its_idempotency_key_and_not_retried_into_a_success(shop, network, limits):
    limits(member_daily_earn=100)
    member = enrol(shop)
    body = {"member_id": member, "reference": "big", "points": 101}
    first = shop.call("POST", "/v1/earn", body, idempotency_key="K-1")
    assert_problem(first, 422, "velocity_limit_exceeded")
    again = shop.call("POST", "/v1/earn", body, idempotency_key="K-1")
    assert_problem(again, 422, "velocity_limit_exceeded")
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert entries(network, member_id=member) == 0


def test_the_limit_counts_earns_at_every_partner(partners, network, limits):
    limits(member_daily_earn=500)
    coffee, books = partners("Coffee"), partners("Books")
    member = enrol(coffee)
    token = coffee.ok("POST", f"/v1/members/{member}/link-tokens")["link_token"]
    books.ok("POST", "/v1/members", {"link_token": token})
    coffee.ok("POST", "/v1/earn", {"member_id": member, "reference": "c-1", "points": 300})
    problem = assert_problem(books.call("POST", "/v1/earn", {"member_id": member, "reference": "b-1",
                                                             "points": 201}), 422, "velocity_limit_exceeded")
    assert problem["used"] == 300
    books.ok("POST", "/v1/earn", {"member_id": member, "reference": "b-2", "points": 200})


def test_rules_computed_points_and_campaign_points_count(shop, network):
    rules(network, "network", """
limits: {member_daily_earn: 150}
campaigns:
  - {id: boost, name: Boost, starts_on: 2026-11-01, ends_on: 2026-11-30, bonus_points: 20, funded_by: network}
""")
    rules(network, shop.partner_id, "base_rate: 1\nlimits: {partner_daily_issuance: 110}\n")
    member = enrol(shop)
    first = shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "p-1", "amount": 10_000})
    assert first["points"] == 120  # 100 partner-funded + 20 network-funded
    problem = assert_problem(shop.call("POST", "/v1/earn", {"member_id": member, "reference": "p-2",
                                                            "amount": 1_100}), 422, "velocity_limit_exceeded")
    assert (problem["limit_name"], problem["used"]) == ("member_daily_earn", 120)  # 11 + 20 > 30 left
    # the partner's issuance counts its own points only: 100 so far, 10 left under its cap of 110
    assert shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "p-3", "amount": 1_000})["points"] == 30
    problem = assert_problem(shop.call("POST", "/v1/earn", {"member_id": enrol(shop), "reference": "p-4",
                                                            "points": 1}), 422, "velocity_limit_exceeded")
    assert (problem["limit_name"], problem["used"]) == ("partner_daily_issuance", 110)
    verify_ok(network)


def test_spending_over_the_daily_burn_limit_is_refused_and_holds_count(shop, network, limits):
    limits(member_daily_burn=300)
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "seed", "points": 1000})
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b-1", "points": 100})
    hold = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h-1", "points": 150})
    problem = assert_problem(shop.call("POST", "/v1/burn", {"member_id": member, "reference": "b-2",
                                                            "points": 51}), 422, "velocity_limit_exceeded")
    assert (problem["limit_name"], problem["used"]) == ("member_daily_burn", 250)
    assert_problem(shop.call("POST", "/v1/holds", {"member_id": member, "reference": "h-2", "points": 51}),
                   422, "velocity_limit_exceeded")
    # a captured hold counts what was captured; the released rest gives room back
    shop.ok("POST", f"/v1/holds/{hold['hold_id']}/capture", {"points": 100})
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b-3", "points": 100})
    assert balance(shop, member) == 700
    [alert] = alerts(network)
    assert alert["count"] == 2 and alert["detail"]["limit_name"] == "member_daily_burn"
    verify_ok(network)


def test_a_voided_hold_gives_its_room_back(shop, network, limits):
    limits(member_daily_burn=100)
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "seed", "points": 500})
    hold = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h-1", "points": 100})
    assert_problem(shop.call("POST", "/v1/burn", {"member_id": member, "reference": "b-1", "points": 1}),
                   422, "velocity_limit_exceeded")
    shop.ok("POST", f"/v1/holds/{hold['hold_id']}/void", {})
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b-2", "points": 100})


def test_a_timed_out_hold_gives_its_room_back_before_the_timeout_job_runs(shop, network, limits, clock, settings):
    limits(member_daily_burn=150)
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "seed", "points": 500})
    shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h-1", "points": 100})
    assert_problem(shop.call("POST", "/v1/burn", {"member_id": member, "reference": "b-1", "points": 100}),
                   422, "velocity_limit_exceeded")
    # timed out the same network day; the hold-timeout job has not released it yet
    clock.advance(minutes=settings.hold_timeout_minutes)
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b-2", "points": 100})


def test_the_partners_daily_issuance_cap_counts_all_its_members(shop, network):
    rules(network, shop.partner_id, "limits: {partner_daily_issuance: 1000}\n")
    first, second = enrol(shop), enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": first, "reference": "e-1", "points": 700})
    problem = assert_problem(shop.call("POST", "/v1/earn", {"member_id": second, "reference": "e-2",
                                                            "points": 301}), 422, "velocity_limit_exceeded")
    assert (problem["limit_name"], problem["used"], problem["remaining"]) == ("partner_daily_issuance", 700, 300)
    shop.ok("POST", "/v1/earn", {"member_id": second, "reference": "e-3", "points": 300})
    [alert] = alerts(network)
    assert (alert["partner_id"], alert["member_id"]) == (shop.partner_id, None)
    assert alert["detail"]["last_member_id"] == second
    verify_ok(network)


def test_a_batchs_partner_cap_alert_names_the_last_member_refused(shop, network):
    """The partner cap's alert is about the partner; its detail describes the latest refusal (as an
    alert folded from later units does): the last member refused, what was used and asked then, and
    how many of the batch's events were refused."""
    rules(network, shop.partner_id, "limits: {partner_daily_issuance: 1000}\n")
    first, second, third, fourth = enrol(shop), enrol(shop), enrol(shop), enrol(shop)
    answer = shop.ok("POST", "/v1/batch", {"events": [
        {"type": "earn", "reference": "e-1", "member_id": first, "points": 700},
        {"type": "earn", "reference": "e-2", "member_id": second, "points": 400},   # refused: 1100 > 1000
        {"type": "earn", "reference": "e-3", "member_id": third, "points": 200},    # 900
        {"type": "earn", "reference": "e-4", "member_id": fourth, "points": 150},   # refused: 1050 > 1000
    ]})
    assert [r["status"] for r in answer["results"]] == [200, 422, 200, 422]
    [alert] = alerts(network)
    assert (alert["partner_id"], alert["member_id"], alert["count"]) == (shop.partner_id, None, 1)
    detail = alert["detail"]
    assert (detail["last_member_id"], detail["used"], detail["asked"], detail["refused_events"]) == (
        fourth, 900, 150, 2)


def test_issuance_before_the_cap_came_into_force_counts_toward_it(shop, network, clock):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "before", "points": 800})
    rules(network, shop.partner_id, "limits: {partner_daily_issuance: 1000}\n")
    assert_problem(shop.call("POST", "/v1/earn", {"member_id": member, "reference": "after", "points": 201}),
                   422, "velocity_limit_exceeded")
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "after-2", "points": 200})


def test_a_cap_set_again_the_same_day_counts_what_was_issued_while_it_was_off(shop, network, clock):
    capped = "limits: {partner_daily_issuance: 1000}\n"
    member = enrol(shop)
    rules(network, shop.partner_id, capped)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 100})
    clock.advance(minutes=1)
    rules(network, shop.partner_id, "base_rate: 1\n")  # the cap dropped
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-2", "points": 800})
    clock.advance(minutes=1)
    rules(network, shop.partner_id, capped)  # and back, the same network day
    problem = assert_problem(shop.call("POST", "/v1/earn", {"member_id": member, "reference": "e-3",
                                                            "points": 101}), 422, "velocity_limit_exceeded")
    assert (problem["limit_name"], problem["used"]) == ("partner_daily_issuance", 900)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-4", "points": 100})
    verify_ok(network)


def test_an_uncapped_earn_under_rules_older_than_the_day_sends_nothing_to_the_counter(shop, network, clock):
    """Rules in force since before the network day began were in force all day: no cap today, so no
    counter row, and an earn does not look for one (a statement per earn otherwise)."""
    rules(network, shop.partner_id, "base_rate: 1\n")
    member = enrol(shop)
    clock.advance(days=1)  # the rules are now older than the day
    with captured(network, "issuance_counters") as sent:
        shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 100})
    assert sent == []
    rules(network, shop.partner_id, "base_rate: 2\n")  # rules changed today: a cap may have been on earlier
    with captured(network, "issuance_counters") as sent:
        shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-2", "points": 100})
    assert [statement.split()[0] for statement, _ in sent] == ["UPDATE"]


def test_a_partners_own_cap_wins_over_the_network_default(partners, network, limits):
    limits(partner_daily_issuance=100)
    capped, generous = partners("Capped"), partners("Generous")
    rules(network, generous.partner_id, "limits: {partner_daily_issuance: 10000}\n")
    a, b = enrol(capped), enrol(generous)
    assert_problem(capped.call("POST", "/v1/earn", {"member_id": a, "reference": "x", "points": 101}),
                   422, "velocity_limit_exceeded")
    generous.ok("POST", "/v1/earn", {"member_id": b, "reference": "x", "points": 5000})


def test_limits_roll_over_at_midnight_network_time(shop, network, limits, clock):
    limits(member_daily_earn=100, member_daily_burn=50)
    rules(network, shop.partner_id, "limits: {partner_daily_issuance: 150}\n")
    member = enrol(shop)
    clock.set(datetime(2026, 11, 20, 23, 59, 59, tzinfo=SHANGHAI))
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "late", "points": 100})
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "late-burn", "points": 50})
    assert_problem(shop.call("POST", "/v1/earn", {"member_id": member, "reference": "late-2", "points": 1}),
                   422, "velocity_limit_exceeded")
    assert_problem(shop.call("POST", "/v1/burn", {"member_id": member, "reference": "late-burn-2", "points": 1}),
                   422, "velocity_limit_exceeded")
    clock.set(datetime(2026, 11, 21, 0, 0, 0, tzinfo=SHANGHAI))  # 16:00 UTC: a new network day
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "early", "points": 100})
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "early-burn", "points": 50})
    # the partner's cap rolled over too: 100 issued today, 50 more allowed
    other = enrol(shop)
    problem = assert_problem(shop.call("POST", "/v1/earn", {"member_id": other, "reference": "o-1",
                                                            "points": 51}), 422, "velocity_limit_exceeded")
    assert problem["limit_name"] == "partner_daily_issuance" and problem["business_day"] == "2026-11-21"
    verify_ok(network)


def test_in_a_batch_earlier_events_count_toward_later_ones(shop, network, limits):
    limits(member_daily_earn=250, member_daily_burn=100)
    member = enrol(shop)
    answer = shop.ok("POST", "/v1/batch", {"events": [
        {"type": "earn", "reference": "e-1", "member_id": member, "points": 100},
        {"type": "earn", "reference": "e-2", "member_id": member, "points": 100},
        {"type": "earn", "reference": "e-3", "member_id": member, "points": 100},  # 300 > 250
        {"type": "earn", "reference": "e-4", "member_id": member, "points": 50},   # exactly 250
        {"type": "reversal", "reference": "r-1", "original_reference": "e-4"},      # no room given back
        {"type": "earn", "reference": "e-5", "member_id": member, "points": 1},
        {"type": "burn", "reference": "b-1", "member_id": member, "points": 80},
        {"type": "burn", "reference": "b-2", "member_id": member, "points": 30},   # 110 > 100
    ]})
    assert [(r["status"], (r.get("problem") or {}).get("code")) for r in answer["results"]] == [
        (200, None), (200, None), (422, "velocity_limit_exceeded"), (200, None), (200, None),
        (422, "velocity_limit_exceeded"), (200, None), (422, "velocity_limit_exceeded")]
    assert balance(shop, member) == 250 - 80 - 50
    # one alert raise per limit and member in the unit (refused events counted in its detail); alerts about
    # one member on one day collapse into one row, whose detail is the latest and whose refused_events
    # counts every refusal the row covers (the two earns and the burn)
    [alert] = alerts(network)
    assert alert["count"] == 2 and alert["member_id"] == member
    assert (alert["detail"]["limit_name"], alert["detail"]["refused_events"]) == ("member_daily_burn", 3)
    verify_ok(network)


def test_the_posting_engine_refuses_with_the_error_type(network, limits):
    limits(member_daily_earn=10)
    partner = make_partner(network)
    member = make_member(network, partner)
    [outcome] = network.post(partner, [Event("earn", "r", member, points=11)])
    assert isinstance(outcome, VelocityLimitExceeded) and outcome.status == 422


def test_limit_documents_are_validated_with_clear_errors(network):
    import pytest

    from shared.errors import ValidationFailed

    partner = make_partner(network)
    with pytest.raises(ValidationFailed, match="member limits count across the network"):
        rules(network, partner, "limits: {member_daily_earn: 10}\n")
    with pytest.raises(ValidationFailed, match="limits.partner_daily_issuance"):
        rules(network, partner, "limits: {partner_daily_issuance: 0}\n")
    with pytest.raises(ValidationFailed, match="limits.daily"):
        rules(network, "network", "limits: {daily: 5}\n")


def test_a_hold_released_earlier_in_a_unit_gives_its_room_back_to_a_later_spend_of_it(network, limits, clock):
    """One unit of work (the in-process batch, a partner's file) that voids or partly captures a hold of
    today and then spends: the void or capture is written when the unit ends, so the day's spend read from
    the database still counts the hold open and in full. The unit counts what it released, as the same
    events posted one by one do; a hold of another day counts toward that day, not this one.
    Until 2026-12-07 the spend was refused velocity_limit_exceeded ("60 used")."""
    shop = make_partner(network)
    member = make_member(network, shop)
    limits(member_daily_burn=100)
    network.earn(shop, member, "seed", points=500)
    yesterday = network.hold(shop, member, "h-0", 30)["hold_id"]
    clock.advance(days=1)
    voided = network.hold(shop, member, "h-1", 60)["hold_id"]
    captured = network.hold(shop, member, "h-2", 40)["hold_id"]
    void, capture, burn, refused = network.post(shop, [
        Event("void", hold_id=voided), Event("capture", "c-2", points=10, hold_id=captured),
        Event("burn", "b-1", member, 85), Event("burn", "b-2", member, 6)])
    assert void["released"] == 60 and capture["captured"] == 10 and burn["points"] == 85
    assert isinstance(refused, VelocityLimitExceeded) and refused.extra["used"] == 95  # 10 captured + 85
    # the limits read before the releases (a spend first) count them too
    network.post(shop, [Event("void", hold_id=yesterday)])  # yesterday's: today's count unchanged
    later = network.hold(shop, member, "h-3", 5)["hold_id"]  # today's spend: 100
    first, void_later, after = network.post(shop, [Event("burn", "b-3", member, 1), Event("void", hold_id=later),
                                                   Event("burn", "b-4", member, 4)])
    assert isinstance(first, VelocityLimitExceeded) and first.extra["used"] == 100
    assert void_later["released"] == 5 and after["points"] == 4
    verify_ok(network)
