"""A slow receiver with a backlog never makes another partner's fresh event wait for that backlog: the
job claims fairly per endpoint — every endpoint's oldest due delivery before anyone's second, and at
most ``CLAIM_PER_ENDPOINT`` of one endpoint in a batch — so a receiver that answers slowly but within
the timeout (no pause) fills no batch (docs/partner-integration.md, "A slow receiver of yours never
delays the other partners' events"). Within one endpoint, its oldest due deliveries go first."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from shared.config import Settings
from shared.webhooks import delivery, emit
from shared.webhooks.delivery import BATCH, CLAIM_PER_ENDPOINT, PER_ENDPOINT, claim_due, deliver_due
from shared.webhooks.endpoints import set_endpoint
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import deliveries, register
from tests.webhooks.receivers import slow_receiver

SLOW = 0.5  # seconds the slow receiver takes to answer 200: well within the timeout, so never paused


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=Path(tmp_path) / "data", webhook_allow_private_targets=True)


def _after_a_while(handler: BaseHTTPRequestHandler) -> None:
    """Answers 200 after ``SLOW`` seconds."""
    time.sleep(SLOW)
    handler.send_response(200)
    handler.send_header("content-length", "0")
    handler.end_headers()


@pytest.fixture
def sleeper():
    with slow_receiver(_after_a_while) as slow:
        yield slow


def _backlog(network, clock, partner_id: str, count: int) -> list[str]:
    """``count`` events queued a second apart, oldest first."""
    member = make_member(network, partner_id)
    queued = []
    for n in range(count):
        queued += network.tx(lambda tx: emit(tx, "points.expiring", {"member_id": member, "points": n + 1}))
        clock.advance(seconds=1)
    return queued


def test_a_slow_receivers_backlog_does_not_keep_another_partners_fresh_event_waiting(network, clock, receiver,
                                                                                    sleeper, monkeypatch):
    """The reviewer's case: S answers in 0.5 s and has 100 events due (a reminder burst), then F's
    event comes. F's event is sent in the first round of the first run, not behind S's backlog."""
    slow, fast = make_partner(network, "Slow"), make_partner(network, "Fast")
    network.tx(lambda tx: set_endpoint(tx, slow, sleeper.url()))
    register(network, receiver, fast)
    _backlog(network, clock, slow, 100)
    network.earn(fast, make_member(network, fast), "f1", points=5)
    order, real = [], delivery.record

    def record(tx, claimed, outcome):
        order.append(claimed.url)
        return real(tx, claimed, outcome)

    monkeypatch.setattr(delivery, "record", record)
    counts = deliver_due(network, rounds=1)
    [fresh] = deliveries(network, partner_id=fast)
    assert fresh.status == "delivered", "the fast partner's event waited behind the slow one's backlog"
    assert order[0] == receiver.url(f"/hooks/{fast}")  # recorded first, not after S's batch
    # S's share of the round: CLAIM_PER_ENDPOINT of its oldest, every one sent (it is slow, not dead)
    assert counts == {"delivered": CLAIM_PER_ENDPOINT + 1, "retrying": 0, "dead": 0, "stale": 0}
    assert sum(row.status == "delivered" for row in deliveries(network, partner_id=slow)) == CLAIM_PER_ENDPOINT


def test_a_claim_takes_every_endpoints_oldest_before_anyones_next_and_keeps_each_endpoints_order(network, clock,
                                                                                                   receiver):
    a, b, c = (make_partner(network, name) for name in ("A", "B", "C"))
    for partner_id in (a, b, c):
        register(network, receiver, partner_id)
    backlog_a = _backlog(network, clock, a, 30)  # queued first: the oldest
    backlog_b = _backlog(network, clock, b, 30)
    [fresh_c] = _backlog(network, clock, c, 1)  # queued last
    claimed = network.tx(lambda tx: claim_due(tx, 7))
    by_endpoint = {p: [x.id for x in claimed if x.url == receiver.url(f"/hooks/{p}")] for p in (a, b, c)}
    assert by_endpoint[c] == [fresh_c]  # the newest endpoint's only delivery made the batch
    assert by_endpoint[a] == backlog_a[:3] and by_endpoint[b] == backlog_b[:3]  # each endpoint's oldest, in order


def test_one_endpoint_fills_no_batch_beyond_its_share(network, clock, receiver):
    shop = make_partner(network)
    register(network, receiver, shop)
    queued = _backlog(network, clock, shop, BATCH)
    claimed = [x.id for x in network.tx(lambda tx: claim_due(tx))]
    assert claimed == queued[:CLAIM_PER_ENDPOINT]  # its oldest, oldest first
    assert PER_ENDPOINT <= CLAIM_PER_ENDPOINT < BATCH
    # the rest stays due, taken by the next claims in turn
    assert [x.id for x in network.tx(lambda tx: claim_due(tx))] == queued[CLAIM_PER_ENDPOINT:2 * CLAIM_PER_ENDPOINT]
