"""An operator's replay starts a delivery afresh: attempts from zero, the backoff from its first step,
a new 3-day window — while the attempt log keeps every earlier try (docs/partner-integration.md,
"Answering, retries and dead letters")."""

from __future__ import annotations

from shared.webhooks.delivery import deliver_due, delivery_detail, replay
from shared.webhooks.schedule import RETRY_DELAYS, RETRY_WINDOW
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import deliveries, register


def _dead_letter(network, clock, receiver):
    shop = make_partner(network)
    register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    receiver.always = 500
    while not deliver_due(network)["dead"]:
        [row] = deliveries(network)
        clock.set(row.next_attempt_at)
    [dead] = deliveries(network)
    assert dead.status == "dead" and dead.attempts > len(RETRY_DELAYS)
    return dead


def test_a_replay_that_fails_again_is_retried_from_the_first_step_of_the_backoff(network, clock, receiver):
    dead = _dead_letter(network, clock, receiver)
    tries_before = dead.attempts
    clock.advance(days=2)
    replayed = replay(network, dead.id)  # the receiver still fails
    assert replayed["status"] == "pending" and replayed["previous_status"] == "dead"
    assert replayed["attempts"] == 1  # counted afresh
    assert len(replayed["attempt_log"]) == tries_before + 1  # the history is kept
    [row] = deliveries(network)
    assert row.retry_from == clock.now()
    # the first step of the backoff (5 s ± 10 %), not the last one (10 h)
    wait = row.next_attempt_at - clock.now()
    assert RETRY_DELAYS[0] * 0.9 <= wait <= RETRY_DELAYS[0] * 1.1
    clock.set(row.next_attempt_at)
    assert deliver_due(network)["retrying"] == 1
    [row] = deliveries(network)
    assert row.attempts == 2
    assert RETRY_DELAYS[1] * 0.9 <= row.next_attempt_at - clock.now() <= RETRY_DELAYS[1] * 1.1


def test_a_replay_gets_a_whole_new_window_of_retries(network, clock, receiver):
    dead = _dead_letter(network, clock, receiver)
    replay(network, dead.id)
    started = clock.now()
    while not deliver_due(network)["dead"]:
        [row] = deliveries(network)
        clock.set(row.next_attempt_at)
    [again] = deliveries(network)
    assert again.status == "dead" and again.dead_at - started >= RETRY_WINDOW
    assert again.attempts > len(RETRY_DELAYS)  # the whole schedule again, counted from one
    detail = network.tx(lambda tx: delivery_detail(tx, dead.id), readonly=True)
    assert len(detail["attempt_log"]) == dead.attempts + again.attempts


def test_a_replay_of_a_delivered_message_counts_afresh_too(network, clock, receiver):
    shop = make_partner(network)
    register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    receiver.script = [500]
    deliver_due(network)
    clock.advance(seconds=10)
    deliver_due(network)
    [delivered] = deliveries(network)
    assert delivered.status == "delivered" and delivered.attempts == 2
    clock.advance(hours=1)
    replayed = replay(network, delivered.id)
    assert replayed["status"] == "delivered" and replayed["attempts"] == 1
    assert [a["status_code"] for a in replayed["attempt_log"]] == [500, 200, 200]
