"""Enabling a disabled endpoint again makes its pending messages due at once, with a fresh retry
window — not at the backoff step they had reached (up to 10 hours away)."""

from datetime import timedelta

from shared.webhooks.delivery import claim_due, deliver_due
from shared.webhooks.endpoints import disable_endpoint
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import deliveries, register


def test_a_message_deep_in_its_backoff_is_tried_as_soon_as_the_endpoint_is_enabled_again(network, clock, receiver):
    shop = make_partner(network)
    register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    receiver.always = 503
    for _ in range(6):  # 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h between tries
        [row] = deliveries(network)
        clock.set(row.next_attempt_at)
        assert deliver_due(network)["retrying"] == 1
    [row] = deliveries(network)
    assert row.next_attempt_at - clock.now() > timedelta(hours=8)
    network.tx(lambda tx: disable_endpoint(tx, shop))
    clock.advance(minutes=10)
    receiver.always = None
    register(network, receiver, shop)  # enabled again
    [row] = deliveries(network)
    assert row.status == "pending" and row.next_attempt_at == clock.now() and row.retry_from == clock.now()
    assert deliver_due(network)["delivered"] == 1
    assert len(receiver.requests) == 7


def test_a_message_leased_to_a_worker_keeps_its_lease_when_the_endpoint_is_enabled_again(network, clock, receiver):
    shop = make_partner(network)
    register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    [claimed] = network.tx(lambda tx: claim_due(tx))  # in flight
    [leased] = deliveries(network)
    network.tx(lambda tx: disable_endpoint(tx, shop))
    register(network, receiver, shop)  # enabled again while the worker still holds it
    [row] = deliveries(network)
    assert row.next_attempt_at == leased.next_attempt_at > clock.now() and row.retry_from == clock.now()
    assert network.tx(lambda tx: claim_due(tx)) == []  # not sent twice at once


def test_a_reenabled_message_that_fails_again_starts_its_backoff_afresh(network, clock, receiver):
    """Re-enabled, a message starts the schedule again, as a replay does: a failure right after waits
    5 s, not the 10 h step it had reached before the endpoint was disabled; its attempts count from
    one again and the earlier ones stay in the attempt log."""
    shop = make_partner(network)
    register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    receiver.always = 503
    for _ in range(6):
        [row] = deliveries(network)
        clock.set(row.next_attempt_at)
        assert deliver_due(network)["retrying"] == 1
    network.tx(lambda tx: disable_endpoint(tx, shop))
    clock.advance(minutes=10)
    register(network, receiver, shop)  # enabled again, the receiver still failing
    [row] = deliveries(network)
    assert row.attempts == 0
    assert deliver_due(network)["retrying"] == 1
    [row] = deliveries(network)
    assert row.attempts == 1 and timedelta(seconds=4) < row.next_attempt_at - clock.now() < timedelta(seconds=6)
    assert len(receiver.requests) == 7
