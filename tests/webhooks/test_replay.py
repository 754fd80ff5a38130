"""An operator's replay starts a delivery afresh: attempts from zero, the backoff from its first step,
a new 3-day window — while the attempt log keeps every earlier try (docs/partner-integration.md,
"Answering, retries and dead letters")."""

from __future__ import annotations

import pytest

from shared.webhooks.delivery import Outcome, claim_due, deliver_due, delivery_detail, queue_replay, record, replay
from shared.webhooks.schedule import RETRY_DELAYS, RETRY_WINDOW
from tests.factories import make_member, make_partner
from tests.interleave import Pause, overlap
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


def _pending(network, receiver):
    shop = make_partner(network)
    register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    [row] = deliveries(network)
    assert row.status == "pending"
    return row


def _refused_as_pending(call):
    from shared.webhooks.delivery import DeliveryPending

    with pytest.raises(DeliveryPending) as refused:
        call()
    assert refused.value.code == "delivery_pending" and refused.value.status == 409
    return refused.value


def test_replaying_a_delivery_a_worker_is_sending_is_refused_and_the_send_is_kept(network, clock, receiver):
    """docs/dashboard.md: Replay is for a delivered or dead event. Resetting one a worker has leased
    would throw its successful send away as 'stale' and send the message again."""
    row = _pending(network, receiver)
    [claimed] = network.tx(lambda tx: claim_due(tx))  # a worker is sending it now
    _refused_as_pending(lambda: network.tx(lambda tx: queue_replay(tx, row.id)))
    _refused_as_pending(lambda: replay(network, row.id))
    assert receiver.requests == []  # the refused replay sent nothing
    assert network.tx(lambda tx: record(tx, claimed, Outcome(200, None, 5))) == "delivered"
    [after] = deliveries(network)
    assert (after.status, after.attempts, after.claim_token) == ("delivered", 1, None)


def test_a_pending_delivery_waiting_for_its_next_try_is_not_replayed(network, clock, receiver):
    _pending(network, receiver)
    receiver.script = [500]
    assert deliver_due(network)["retrying"] == 1
    [before] = deliveries(network)
    _refused_as_pending(lambda: replay(network, before.id))
    [after] = deliveries(network)
    assert (after.status, after.attempts, after.next_attempt_at, after.retry_from) == (
        "pending", 1, before.next_attempt_at, before.retry_from)
    assert len(receiver.requests) == 1


def test_two_overlapping_replays_of_one_dead_letter_queue_it_once(network, clock, receiver):
    """The status is checked and changed in one conditional UPDATE: the second replay, waiting for the
    first (a row lock on PostgreSQL, the one writer on SQLite), finds the delivery pending again."""
    dead = _dead_letter(network, clock, receiver)
    pause = Pause()

    def first_replay(tx):
        queued = queue_replay(tx, dead.id)
        pause()  # its transaction still open
        return queued

    both = overlap(lambda: network.tx(first_replay), lambda: network.tx(lambda tx: queue_replay(tx, dead.id)), pause)
    assert both.second_waited  # they did overlap
    assert both.first == {"delivery_id": dead.id, "previous_status": "dead"}
    assert getattr(both.second, "code", both.second) == "delivery_pending"
    [row] = deliveries(network)
    assert row.status == "pending" and row.attempts == 0
