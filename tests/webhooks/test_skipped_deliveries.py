"""A delivery the run does not send, because an earlier delivery to its URL timed out in that run,
uses up none of its tries: it is put back, with the try it was claimed for given back, until the
endpoint's pause after the timeout has passed. The pause grows while the endpoint keeps timing out
and ends with a delivery it answers, so a backlog behind one slow moment is sent when the receiver
is back, and never reaches the dead letters without having been sent its tries
(docs/partner-integration.md, "Retries")."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.config import Settings
from shared.models import WebhookEndpoint
from shared.webhooks import delivery, emit
from shared.webhooks.delivery import Outcome, deliver_due, delivery_detail, replay
from shared.webhooks.endpoints import set_endpoint
from shared.webhooks.schedule import MIN_TRIES
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import deliveries, register


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=Path(tmp_path) / "data", webhook_allow_private_targets=True)


class Receivers:
    """A stand-in for ``send``: URLs in ``down`` time out; every call is counted per delivery."""

    def __init__(self):
        self.down: set[str] = set()
        self.calls: Counter = Counter()

    def __call__(self, client, claimed, clock, key, *, allow_private=True):
        self.calls[claimed.id] += 1
        if claimed.url in self.down:
            return Outcome(None, "timed out after 15.0 s", 15000, timed_out=True)
        return Outcome(200, None, 1)


@pytest.fixture
def receivers(monkeypatch) -> Receivers:
    fake = Receivers()
    monkeypatch.setattr(delivery, "send", fake)
    return fake


def _queue(network, partner: str, count: int) -> None:
    member = make_member(network, partner)
    for n in range(count):
        network.tx(lambda tx, n=n: emit(tx, "points.expiring", {"member_id": member, "points": n + 1}))


def _endpoint(network, partner: str) -> WebhookEndpoint:
    return network.tx(lambda tx: tx.session.execute(
        select(WebhookEndpoint).where(WebhookEndpoint.partner_id == partner)).scalar_one(), readonly=True)


def _tries_are_sends(network, receivers: Receivers, partner: str) -> None:
    """Every try a delivery counts was a call to its receiver, and each is in its attempt log."""
    for row in deliveries(network, partner_id=partner):
        log = network.tx(lambda tx, row=row: delivery_detail(tx, row.id), readonly=True)["attempt_log"]
        assert row.attempts == receivers.calls[row.id] == len(log), (row.id, row.attempts, receivers.calls[row.id])


def test_a_delivery_skipped_after_a_timeout_keeps_its_try_and_waits_out_the_endpoints_pause(
        network, receiver, receivers):
    slow = make_partner(network, "Slow")
    register(network, receiver, slow)
    receivers.down.add(receiver.url(f"/hooks/{slow}"))
    _queue(network, slow, 10)
    counts = deliver_due(network, rounds=1)
    rows = deliveries(network, partner_id=slow)
    tried = [row for row in rows if row.attempts]
    skipped = [row for row in rows if not row.attempts]
    assert 1 <= len(tried) <= delivery.PER_ENDPOINT and all("timed out" in row.last_error for row in tried)
    assert len(skipped) == 10 - len(tried)
    assert counts["retrying"] == len(tried) and counts["skipped"] == len(skipped)
    _tries_are_sends(network, receivers, slow)
    paused = _endpoint(network, slow).paused_until
    assert paused == network.clock.now() + delivery.PAUSE_FIRST
    assert all(row.status == "pending" and row.claim_token is None and row.next_attempt_at == paused
               and row.last_error is None for row in skipped)

    # while the pause runs, nothing of the endpoint is claimed, not even what its schedule makes due
    network.clock.advance(seconds=20)
    assert deliver_due(network) == {"delivered": 0, "retrying": 0, "dead": 0, "stale": 0}
    # it times out again when the pause is over: the next pause is longer
    network.clock.advance(seconds=delivery.PAUSE_FIRST.total_seconds())
    deliver_due(network, rounds=1)
    assert _endpoint(network, slow).paused_until == network.clock.now() + 2 * delivery.PAUSE_FIRST
    _tries_are_sends(network, receivers, slow)

    # the receiver is back: after the pause its backlog is sent, and a success ends the pausing
    receivers.down.clear()
    network.clock.advance(hours=11)
    deliver_due(network)
    assert {row.status for row in deliveries(network, partner_id=slow)} == {"delivered"}
    endpoint = _endpoint(network, slow)
    assert (endpoint.paused_until, endpoint.pauses) == (None, 0)
    _tries_are_sends(network, receivers, slow)


def test_the_pause_grows_to_its_longest_and_no_further(network, receiver, receivers):
    slow = make_partner(network, "Slow")
    register(network, receiver, slow)
    receivers.down.add(receiver.url(f"/hooks/{slow}"))
    _queue(network, slow, 1)
    seen = []
    for _ in range(12):
        network.clock.advance(hours=11)  # past every retry delay and every pause
        deliver_due(network)
        seen.append(_endpoint(network, slow).paused_until - network.clock.now())
    assert seen[:3] == [delivery.PAUSE_FIRST, 2 * delivery.PAUSE_FIRST, 4 * delivery.PAUSE_FIRST]
    assert seen[-1] == delivery.PAUSE_LONGEST and max(seen) == delivery.PAUSE_LONGEST
    assert seen == sorted(seen)


def test_a_backlog_behind_a_timing_out_endpoint_is_not_dead_lettered_without_being_sent(
        network, receiver, receivers):
    slow = make_partner(network, "Slow")
    register(network, receiver, slow)
    receivers.down.add(receiver.url(f"/hooks/{slow}"))
    _queue(network, slow, 30)
    for _ in range(2 * MIN_TRIES):  # the job, 11 hours apart: every retry and pause due at each run
        network.clock.advance(hours=11)
        deliver_due(network)
    rows = deliveries(network, partner_id=slow)
    _tries_are_sends(network, receivers, slow)
    dead = [row for row in rows if row.status == "dead"]
    assert all(row.attempts >= MIN_TRIES for row in dead)
    assert any(row.status == "pending" and row.attempts == 0 for row in rows)  # waits its turn, unspent
    receivers.down.clear()  # the receiver is back: what was never given up is delivered
    network.clock.advance(hours=11)
    deliver_due(network)
    assert {row.status for row in deliveries(network, partner_id=slow)} <= {"dead", "delivered"}
    assert sum(row.status == "delivered" for row in deliveries(network, partner_id=slow)) == 30 - len(dead)


def test_other_partners_are_claimed_while_an_endpoint_is_paused(network, receiver, receivers):
    slow, other = make_partner(network, "Slow"), make_partner(network, "Other")
    register(network, receiver, slow)
    register(network, receiver, other)
    receivers.down.add(receiver.url(f"/hooks/{slow}"))
    _queue(network, slow, 20)
    deliver_due(network, limit=5, rounds=1)  # the slow endpoint's backlog, claimed first, times out
    _queue(network, other, 3)
    assert deliver_due(network, limit=5, rounds=1)["delivered"] == 3
    assert all(row.status == "delivered" for row in deliveries(network, partner_id=other))


def test_an_operators_replay_and_a_new_url_do_not_wait_for_the_pause(network, receiver, receivers):
    slow = make_partner(network, "Slow")
    register(network, receiver, slow)
    receivers.down.add(receiver.url(f"/hooks/{slow}"))
    _queue(network, slow, 6)
    deliver_due(network, rounds=1)
    receivers.down.clear()
    waiting = [row for row in deliveries(network, partner_id=slow) if row.attempts == 0]
    # an operator's replay is sent at once, and its success ends the pause
    assert replay(network, waiting[0].id)["status"] == "delivered"
    assert _endpoint(network, slow).paused_until is None
    network.clock.advance(seconds=10)  # past a timed-out try's first delay (5 s), not the pause's end (30 s)
    deliver_due(network)
    assert {row.status for row in deliveries(network, partner_id=slow)} == {"delivered"}

    # the partner moves to another URL: its deliveries are due there now
    receivers.down.add(receiver.url(f"/hooks/{slow}"))
    _queue(network, slow, 6)
    deliver_due(network, rounds=1)
    assert _endpoint(network, slow).paused_until is not None
    network.tx(lambda tx: set_endpoint(tx, slow, receiver.url(f"/hooks/{slow}/v2")))
    assert _endpoint(network, slow).paused_until is None
    network.clock.advance(seconds=10)  # past a timed-out try's first delay (5 s), not the pause's end (30 s)
    deliver_due(network)
    assert {row.status for row in deliveries(network, partner_id=slow)} == {"delivered"}
    _tries_are_sends(network, receivers, slow)


def test_the_retry_schedule_of_a_real_try_still_holds(network, receiver, receivers):
    """A timed-out try waits at least its schedule's delay, even once the endpoint's pause is over."""
    slow = make_partner(network, "Slow")
    register(network, receiver, slow)
    receivers.down.add(receiver.url(f"/hooks/{slow}"))
    _queue(network, slow, 1)
    for _ in range(3):  # tries 1-3, each waiting out its delay (5 s, 5 min) and the pause (30 s, 1 min)
        network.clock.advance(hours=1)
        deliver_due(network)
    [row] = deliveries(network, partner_id=slow)
    assert row.attempts == 3
    assert row.next_attempt_at - network.clock.now() >= timedelta(minutes=30) * 0.9  # the third delay
