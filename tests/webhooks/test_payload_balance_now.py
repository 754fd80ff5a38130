"""The `balance` a webhook carries is the member's balance right after the transaction as a spend then
would find it (partner guide, "Webhooks"; docs/ledger.md decisions 6, 7 and 13): points past their
expiry gone and holds past their timeout released, though the jobs have not recorded either yet — the
same balance the posting's answer gives and GET /v1/members/{id} shows."""

from __future__ import annotations

import json

from shared.ledger import holds as holds_job
from shared.ledger.queries import member_balance
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import deliveries, register


def payloads(network, event_type: str) -> list[dict]:
    return [json.loads(d.body)["data"] for d in deliveries(network, event_type=event_type)]


def now_view(network, member: str) -> dict:
    view = network.tx(lambda tx: member_balance(tx, member, apply_due=True), readonly=True)
    return {"available": view["available"], "held": view["held"]}


def test_points_earned_after_points_expired_and_a_hold_timed_out(network, clock, receiver):
    shop = make_partner(network, "Coffee")
    register(network, receiver, shop)
    member = make_member(network, shop)
    network.earn(shop, member, "e1", points=100)
    clock.advance(days=366)  # past the lot's expiry (rolling 12 months); the expiry job has not run
    network.earn(shop, member, "e2", points=50)
    network.hold(shop, member, "h1", points=20)
    clock.advance(minutes=16)  # the hold timed out; the hold-timeout job has not run
    earned = network.earn(shop, member, "e3", points=5)
    assert earned["balance"] == {"available": 55, "held": 0} == now_view(network, member)
    sent = [p for p in payloads(network, "points.earned") if p["reference"] == "e3"]
    assert [p["balance"] for p in sent] == [{"available": 55, "held": 0}]


def test_points_redeemed_and_reversed_carry_the_balance_a_spend_would_find(network, clock, receiver):
    shop = make_partner(network, "Coffee")
    register(network, receiver, shop)
    member = make_member(network, shop)
    network.earn(shop, member, "e1", points=100)
    network.hold(shop, member, "h1", points=60)
    clock.advance(minutes=16)  # 40 free, the hold of 60 timed out
    burnt = network.burn(shop, member, "b1", points=10)  # covered by the 40: the hold is not released
    assert burnt["balance"] == {"available": 90, "held": 0} == now_view(network, member)
    reversed_burn = network.reverse(shop, "r1", "b1")
    assert reversed_burn["balance"] == {"available": 100, "held": 0} == now_view(network, member)
    [redeemed] = payloads(network, "points.redeemed")
    assert redeemed["balance"] == {"available": 90, "held": 0}
    [reversal] = payloads(network, "points.reversed")
    assert reversal["balance"] == {"available": 100, "held": 0}


def test_points_adjusted_and_a_network_bonus_carry_the_balance_a_spend_would_find(network, clock, receiver):
    from shared.ledger.adjustments import adjust_member

    shop = make_partner(network, "Coffee")
    register(network, receiver, shop)
    member = make_member(network, shop)
    network.earn(shop, member, "e1", points=100)
    network.hold(shop, member, "h1", points=60)
    clock.advance(minutes=16)
    bonus = network.grant_bonus(member, 7, reason="welcome")
    assert bonus["balance"] == {"available": 107, "held": 0} == now_view(network, member)
    adjusted = network.tx(lambda tx: adjust_member(tx, member, 3, reason="goodwill"))
    assert adjusted["balance"] == {"available": 110, "held": 0} == now_view(network, member)
    assert [p["balance"] for p in payloads(network, "points.earned")][-1] == {"available": 107, "held": 0}
    [sent] = payloads(network, "points.adjusted")
    assert sent["balance"] == {"available": 110, "held": 0}


def test_points_expired_by_the_job_carry_a_timed_out_hold_released(network, clock, receiver):
    shop = make_partner(network, "Coffee")
    register(network, receiver, shop)
    member = make_member(network, shop)
    network.earn(shop, member, "e1", points=100)
    clock.advance(days=200)
    network.earn(shop, member, "e2", points=50)
    network.hold(shop, member, "h1", points=20)  # from the first lot
    clock.advance(days=166)  # the first lot is past its expiry, the hold long timed out; neither job ran
    network.expire_lots()  # the expiry job runs first: 80 expire; the hold's 20 expire once it is released
    [expired] = payloads(network, "points.expired")
    assert expired["points"] == 80
    assert expired["balance"] == {"available": 50, "held": 0} == now_view(network, member)


def test_a_hold_timeout_batch_that_reaches_one_of_two_lapsed_holds_sends_the_balance_a_spend_would_find(
        network, clock, receiver):
    """The hold-timeout job's batches are bounded: one may release a member's first lapsed hold and not
    its second. The points.expired it sends counts the second as released too, and the lot past its
    expiry as expired, as the member view does (found in review of 2745789)."""
    shop = make_partner(network, "Coffee")
    register(network, receiver, shop)
    member = make_member(network, shop)
    network.earn(shop, member, "e1", points=100)
    network.hold(shop, member, "h1", points=10)
    clock.advance(minutes=1)
    network.hold(shop, member, "h2", points=10)
    clock.advance(days=366)  # the lot past expiry, both holds timed out; no job ran
    # one batch of the hold-timeout job reaches h1 only (batches are bounded: expiry_batch_size)
    network.tx(lambda tx: holds_job.expire_holds_next(tx, 1))
    [sent] = payloads(network, "points.expired")
    assert sent["balance"] == now_view(network, member)  # webhook says held 10: h2 is due too
