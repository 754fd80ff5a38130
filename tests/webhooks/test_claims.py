"""Claiming due deliveries with several workers: each delivery goes to one worker at a time."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from shared.webhooks import emit
from shared.webhooks.delivery import LEASE, RETENTION, claim_due, deliver_due, prune_delivered
from shared.webhooks.schedule import JITTER, MIN_TRIES, RETRY_DELAYS, RETRY_WINDOW, next_attempt_at
from tests.factories import make_member, make_partner
from tests.interleave import Pause, overlap
from tests.webhooks.conftest import deliveries, register


def _queue(network, receiver, count: int) -> set[str]:
    shop = make_partner(network)
    register(network, receiver, shop)
    member = make_member(network, shop)
    ids = set()
    for n in range(count):
        ids.update(network.tx(lambda tx: emit(tx, "points.expiring", {"member_id": member, "points": n + 1})))
    return ids


def test_concurrent_workers_claim_disjoint_batches(network, clock, receiver):
    queued = _queue(network, receiver, 40)
    with ThreadPoolExecutor(max_workers=6) as pool:
        batches = list(pool.map(lambda _: [c.id for c in network.tx(lambda tx: claim_due(tx, 5))], range(12)))
    claimed = [delivery_id for batch in batches for delivery_id in batch]
    assert len(claimed) == len(set(claimed)) and set(claimed) <= queued  # disjoint
    # claims at the same moment share the endpoint's CLAIM_PER_ENDPOINT turns (a row another claim holds
    # is skipped, not replaced by one further back): the next claims take the rest, still once each
    while batch := [c.id for c in network.tx(lambda tx: claim_due(tx, 5))]:
        claimed += batch
    assert len(claimed) == len(set(claimed)) == 40 and set(claimed) == queued
    assert network.tx(lambda tx: claim_due(tx, 100)) == []  # all leased
    clock.advance(seconds=LEASE.total_seconds() + 1)  # a worker that died loses its lease: sent again
    again: list[str] = []  # by the next claims (at most CLAIM_PER_ENDPOINT of one endpoint each)
    while batch := [c.id for c in network.tx(lambda tx: claim_due(tx, 100))]:
        again += batch
    assert len(again) == len(set(again)) == 40 and set(again) == queued


@pytest.mark.postgres
def test_a_claim_in_progress_is_skipped_not_waited_for(network, receiver):
    queued = _queue(network, receiver, 6)
    first_claimed, release = threading.Event(), threading.Event()
    held: list[str] = []

    def slow_worker(tx):
        held.extend(c.id for c in claim_due(tx, 3))
        first_claimed.set()
        assert release.wait(30)

    worker = threading.Thread(target=lambda: network.tx(slow_worker))
    worker.start()
    assert first_claimed.wait(30)
    try:  # the first worker's rows are locked and uncommitted: SKIP LOCKED passes over them at once
        other = [c.id for c in network.tx(lambda tx: claim_due(tx, 10))]
    finally:
        release.set()
        worker.join()
    assert len(held) == 3 and len(other) == 3 and set(held) | set(other) == queued


def test_retry_schedule_covers_three_days_then_gives_up():
    start = datetime(2026, 11, 20, tzinfo=timezone.utc)
    rng = random.Random(7)
    at, attempts, delays = start, 1, []
    while (following := next_attempt_at(attempts, start, at, rng)) is not None:
        delays.append(following - at)
        at, attempts = following, attempts + 1
    assert at - start >= RETRY_WINDOW  # the last try is at least three days after the first
    assert at - start <= RETRY_WINDOW + RETRY_DELAYS[-1] * (1 + JITTER)
    for expected, actual in zip(RETRY_DELAYS, delays):
        assert expected * (1 - JITTER) <= actual <= expected * (1 + JITTER)
    assert all(d <= RETRY_DELAYS[-1] * (1 + JITTER) for d in delays)
    assert attempts >= MIN_TRIES
    assert next_attempt_at(MIN_TRIES, start, start + RETRY_WINDOW, rng) is None
    assert next_attempt_at(MIN_TRIES, start, start + RETRY_WINDOW - timedelta(seconds=1), rng) is not None


def test_an_outage_does_not_use_up_the_retries():
    """A message that failed 3 tries, then waited out 4 days of no delivery job, is not dead at its
    next failure: it keeps to the schedule until it has had the tries the window gives."""
    start = datetime(2026, 11, 20, tzinfo=timezone.utc)
    after_outage = start + RETRY_WINDOW + timedelta(days=1)
    assert next_attempt_at(4, start, after_outage) is not None
    assert next_attempt_at(MIN_TRIES - 1, start, after_outage) is not None
    assert next_attempt_at(MIN_TRIES, start, after_outage) is None
    assert MIN_TRIES == 12  # 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h, every delay at its longest


def test_delivered_messages_are_pruned_after_retention_dead_letters_stay(network, clock, receiver):
    delivered = _queue(network, receiver, 3)
    deliver_due(network)
    delivered_at = clock.now()
    receiver.always = 500
    [dead] = _queue(network, receiver, 1)
    while not deliver_due(network)["dead"]:  # its tries, on schedule, until it is a dead letter
        [pending] = [row for row in deliveries(network) if row.id == dead]
        clock.set(pending.next_attempt_at)
    clock.set(delivered_at + RETENTION - timedelta(seconds=1))
    assert network.tx(prune_delivered) == 0
    clock.advance(seconds=2)
    assert network.tx(prune_delivered) == 3
    assert [row.id for row in deliveries(network)] == [dead] and dead not in delivered


def test_an_outcome_from_a_lost_lease_does_not_overwrite_the_new_owner(network, clock, receiver):
    from shared.webhooks.delivery import Outcome, delivery_detail, record

    [delivery_id] = _queue(network, receiver, 1)
    [claimed] = network.tx(lambda tx: claim_due(tx, 10))
    clock.advance(seconds=LEASE.total_seconds() + 1)  # the first worker is too slow: its lease runs out
    [retaken] = network.tx(lambda tx: claim_due(tx, 10))
    assert network.tx(lambda tx: record(tx, claimed, Outcome(500, "late", 10))) == "stale"
    assert network.tx(lambda tx: record(tx, retaken, Outcome(204, None, 10))) == "delivered"
    [row] = deliveries(network)
    # both tries count, and both stay in the attempt log
    assert row.status == "delivered" and row.attempts == 2
    log = network.tx(lambda tx: delivery_detail(tx, delivery_id), readonly=True)["attempt_log"]
    assert [a["status_code"] for a in log] == [500, 204]


def test_a_replay_and_the_prune_of_its_delivery_never_both_succeed(network, clock, receiver, monkeypatch):
    """The prune has chosen a delivered message and holds its transaction open; an operator replays
    that message meanwhile. Either the replay is refused (the message is gone) or it stays queued:
    never a replay answered as queued for a message the prune then deletes."""
    from shared.webhooks import delivery
    from shared.webhooks.errors import UnknownDelivery

    [message] = _queue(network, receiver, 1)
    deliver_due(network)
    clock.advance(days=31)
    pause = Pause().after(monkeypatch, delivery, "prunable")
    both = overlap(lambda: network.tx(prune_delivered), lambda: network.tx(lambda tx: delivery.queue_replay(tx, message)),
                   pause)
    left = [row.id for row in deliveries(network)]
    assert (both.first, left, type(both.second)) in ((1, [], UnknownDelivery), (0, [message], dict))
