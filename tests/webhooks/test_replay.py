"""An operator's replay starts a delivery afresh: attempts from zero, the backoff from its first step,
a new 3-day window — while the attempt log keeps every earlier try (docs/partner-integration.md,
"Answering, retries and dead letters"). A pending delivery waiting for its next try is replayed
too (sent now, counted afresh); only one a worker is sending right now is refused."""

from __future__ import annotations

import pytest

from shared.webhooks.delivery import LEASE, Outcome, claim_due, deliver_due, delivery_detail, queue_replay, record, replay
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


def test_a_pending_delivery_on_a_long_backoff_is_replayed_now(network, clock, receiver):
    """An operator who fixed the partner's endpoint replays a message waiting hours for its next try:
    it is sent now, and counts afresh like any replay (attempts from one, a new window)."""
    _pending(network, receiver)
    receiver.always = 500
    for _ in range(4):  # failed four times: the next try is 5 h away
        assert deliver_due(network)["retrying"] == 1
        [waiting] = deliveries(network)
        clock.set(waiting.next_attempt_at)
    clock.set(waiting.next_attempt_at - RETRY_DELAYS[4] * 0.8)  # hours before it is due
    [before] = deliveries(network)
    assert before.attempts == 4 and before.next_attempt_at - clock.now() > RETRY_DELAYS[3]
    receiver.always = None  # the partner's receiver is fixed
    replayed = replay(network, before.id)
    assert replayed["status"] == "delivered" and replayed["previous_status"] == "pending"
    assert replayed["attempts"] == 1 and replayed["delivered_at"] == clock.now().isoformat()
    assert [a["status_code"] for a in replayed["attempt_log"]] == [500] * 4 + [200]
    assert len(receiver.requests) == 5
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {before.id}


def test_a_replayed_pending_delivery_that_fails_again_starts_the_backoff_afresh(network, clock, receiver):
    _pending(network, receiver)
    receiver.always = 500
    for _ in range(3):
        assert deliver_due(network)["retrying"] == 1
        [waiting] = deliveries(network)
        clock.set(waiting.next_attempt_at)
    clock.advance(minutes=-60)  # the fourth try is an hour away
    queued = network.tx(lambda tx: queue_replay(tx, waiting.id))
    assert queued == {"delivery_id": waiting.id, "previous_status": "pending"}
    [due] = deliveries(network)
    assert (due.status, due.attempts, due.next_attempt_at, due.retry_from) == (
        "pending", 0, clock.now(), clock.now())
    assert deliver_due(network)["retrying"] == 1
    [after] = deliveries(network)
    assert after.attempts == 1
    assert RETRY_DELAYS[0] * 0.9 <= after.next_attempt_at - clock.now() <= RETRY_DELAYS[0] * 1.1
    assert len(receiver.requests) == 4  # every try, the replay's among them, recorded once each
    detail = network.tx(lambda tx: delivery_detail(tx, waiting.id), readonly=True)
    assert [a["status_code"] for a in detail["attempt_log"]] == [500] * 4


def test_a_pending_delivery_whose_workers_lease_ran_out_is_replayed(network, clock, receiver):
    """A lease that ran out (the worker died mid-call) no longer protects a send in flight: the
    delivery is due anyway, and a replay sends it now; the dead worker's late outcome is stale."""
    row = _pending(network, receiver)
    [claimed] = network.tx(lambda tx: claim_due(tx))
    clock.advance(seconds=LEASE.total_seconds() + 1)
    replayed = replay(network, row.id)
    assert replayed["status"] == "delivered" and replayed["previous_status"] == "pending"
    assert network.tx(lambda tx: record(tx, claimed, Outcome(200, None, 5))) == "stale"


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
    # the second finds it pending and due (not leased): it is due now all the same, still once
    assert both.second == {"delivery_id": dead.id, "previous_status": "pending"}
    [row] = deliveries(network)
    assert row.status == "pending" and row.attempts == 0 and row.claim_token is None
    assert deliver_due(network)["retrying"] == 1  # sent once, by one claim
    detail = network.tx(lambda tx: delivery_detail(tx, dead.id), readonly=True)
    assert len(detail["attempt_log"]) == dead.attempts + 1


def test_replaying_a_message_whose_endpoint_is_disabled_is_refused_and_changes_nothing(network, clock, receiver):
    """The job sends nothing to a disabled endpoint: a replay would reset the message and send nothing,
    while it promises to send it now. It is refused (409 endpoint_disabled), the message untouched;
    once the endpoint is enabled again (`webhooks set`), the replay goes."""
    from shared.webhooks.endpoints import disable_endpoint, set_endpoint
    from shared.webhooks.errors import EndpointDisabled

    dead = _dead_letter(network, clock, receiver)
    sent = len(receiver.requests)
    network.tx(lambda tx: disable_endpoint(tx, dead.partner_id))
    for call in (lambda: network.tx(lambda tx: queue_replay(tx, dead.id)), lambda: replay(network, dead.id)):
        with pytest.raises(EndpointDisabled) as refused:
            call()
        assert refused.value.code == "endpoint_disabled" and refused.value.status == 409
        assert dead.id in refused.value.detail and "webhooks set" in refused.value.detail
    [after] = deliveries(network)
    assert (after.status, after.attempts, after.dead_at, after.next_attempt_at, after.retry_from) == (
        "dead", dead.attempts, dead.dead_at, dead.next_attempt_at, dead.retry_from)
    assert len(receiver.requests) == sent  # nothing sent
    network.tx(lambda tx: set_endpoint(tx, dead.partner_id, receiver.url(f"/hooks/{dead.partner_id}")))
    receiver.always = None
    assert replay(network, dead.id)["status"] == "delivered"
