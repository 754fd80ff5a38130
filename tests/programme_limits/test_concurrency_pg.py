"""Limits, caps and referral bonuses under many concurrent writers on PostgreSQL.

Every test releases its threads at once on a barrier; outcomes are counted exactly.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared.errors import ActivityCapReached, VelocityLimitExceeded
from shared.models import IssuanceCounter, ReferralBonus
from tests.factories import make_member, make_partner, verify_ok
from tests.ledger.test_concurrency_pg import run_together, unexpected
from tests.programme_limits.conftest import alerts, rules

pytestmark = pytest.mark.postgres
THREADS = 24


def test_concurrent_earns_for_one_member_never_exceed_the_daily_limit(network, limits):
    limits(member_daily_earn=1000)
    partners = [make_partner(network) for _ in range(3)]
    member = make_member(network, partners[0], also_linked_to=tuple(partners[1:]))

    outcomes = run_together(THREADS, lambda i: network.earn(partners[i % 3], member, f"e-{i}", points=100))

    assert unexpected(outcomes, VelocityLimitExceeded) == []
    assert sum(isinstance(o, dict) for o in outcomes) == 10
    assert network.balance(member)["available"] == 1000
    raised = alerts(network)  # one row per (partner, member, day), counting every refusal
    assert {a["member_id"] for a in raised} == {member}
    assert sum(a["count"] for a in raised) == THREADS - 10
    verify_ok(network)


def test_concurrent_earns_of_one_partner_never_exceed_its_daily_issuance_cap(network):
    partner = make_partner(network)
    rules(network, partner, "limits: {partner_daily_issuance: 1000}\n")
    members = [make_member(network, partner) for _ in range(THREADS)]

    # every thread races to create the day's counter row too
    outcomes = run_together(THREADS, lambda i: network.earn(partner, members[i], f"e-{i}", points=100))

    assert unexpected(outcomes, VelocityLimitExceeded) == []
    assert sum(isinstance(o, dict) for o in outcomes) == 10
    issued = network.tx(lambda tx: tx.session.execute(select(IssuanceCounter.points)).scalar_one())
    assert issued == 1000
    assert sum(network.balance(m)["available"] for m in members) == 1000
    verify_ok(network)


def test_concurrent_earns_while_the_cap_is_dropped_all_count_when_it_is_set_again(network, clock):
    partner = make_partner(network)
    capped = "limits: {partner_daily_issuance: 5000}\n"
    rules(network, partner, capped)
    members = [make_member(network, partner) for _ in range(THREADS)]
    network.earn(partner, members[0], "capped", points=100)  # the day's counter row
    clock.advance(minutes=1)
    rules(network, partner, "base_rate: 1\n")

    outcomes = run_together(THREADS, lambda i: network.earn(partner, members[i], f"e-{i}", points=100))

    assert unexpected(outcomes) == [] and all(isinstance(o, dict) for o in outcomes)
    issued = network.tx(lambda tx: tx.session.execute(select(IssuanceCounter.points)).scalar_one())
    assert issued == 100 + THREADS * 100  # every uncapped unit added to the row, none lost
    clock.advance(minutes=1)
    rules(network, partner, capped)
    with pytest.raises(VelocityLimitExceeded):
        network.earn(partner, members[0], "over", points=5000 - issued + 1)
    network.earn(partner, members[0], "last", points=5000 - issued)
    verify_ok(network)


def test_concurrent_burns_never_exceed_the_daily_burn_limit(network, limits):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "seed", points=10_000)
    limits(member_daily_burn=500)

    outcomes = run_together(THREADS, lambda i: (network.hold if i % 2 else network.burn)(
        partner, member, f"b-{i}", 50))

    assert unexpected(outcomes, VelocityLimitExceeded) == []
    assert sum(isinstance(o, dict) for o in outcomes) == 10
    held = sum(o["points"] for i, o in enumerate(outcomes) if isinstance(o, dict) and i % 2)
    assert (network.balance(member)["available"], network.balance(member)["held"]) == (9_500, held)
    verify_ok(network)


def test_the_referral_bonus_is_posted_once_when_the_referee_earns_concurrently(network):
    partners = [make_partner(network) for _ in range(2)]
    for partner in partners:
        rules(network, partner, "referral: {bonus_points: 500}\n")
    referrer = make_member(network, partners[0])
    referee = network.enrol(partners[0], phone="+8613700001234", referrer_member_id=referrer)["member_id"]
    token = network.mint_link_token(partners[0], referee)["link_token"]
    network.enrol(partners[1], link_token=token)

    outcomes = run_together(THREADS, lambda i: network.earn(partners[i % 2], referee, f"e-{i}", points=10))

    assert unexpected(outcomes) == []
    assert sum("referral_bonus" in o for o in outcomes) == 1
    assert network.balance(referrer)["available"] == 500
    assert network.balance(referee)["available"] == 10 * THREADS
    assert network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(ReferralBonus)).scalar_one()) == 1
    verify_ok(network)


def test_concurrent_activity_awards_respect_the_members_cap(network):
    partner = make_partner(network)
    rules(network, partner, "activities: {check-in: {points: 5, per_member_total: 3}}\n")
    member = make_member(network, partner)

    outcomes = run_together(THREADS, lambda i: network.activity(partner, member, "check-in", f"c-{i}"))

    assert unexpected(outcomes, ActivityCapReached) == []
    assert sum(isinstance(o, dict) for o in outcomes) == 3
    assert network.balance(member)["available"] == 15
    verify_ok(network)


def test_concurrent_signed_api_earns_for_one_member_stop_exactly_at_the_limit(shop, network, limits):
    from tests.partner_api.conftest import enrol

    limits(member_daily_earn=500)
    member = enrol(shop)
    count = 12

    answers = run_together(count, lambda i: shop.call("POST", "/v1/earn", {
        "member_id": member, "reference": f"api-{i}", "points": 100}))

    statuses = sorted((a.status_code, a.json().get("code")) for a in answers)
    assert statuses == [(200, None)] * 5 + [(422, "velocity_limit_exceeded")] * (count - 5)
    assert shop.ok("GET", f"/v1/members/{member}")["balance"]["available"] == 500
    verify_ok(network)
