"""One slow receiver, or a name that takes long to resolve, holds up nobody else: a delivery has a
total time (resolution, connection and answer together), and a slow endpoint's deliveries neither
take every sender nor keep the other endpoints' outcomes waiting (docs/operations.md, "Webhooks")."""

from __future__ import annotations

import socket
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from shared.config import Settings
from shared.webhooks import delivery, emit
from shared.webhooks.delivery import deliver_due, delivery_detail
from shared.webhooks.endpoints import set_endpoint
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import deliveries, register
from tests.webhooks.receivers import slow_receiver

DEADLINE = 1.0  # the total time a delivery may take, shortened for the test
LINGER = 10.0  # how long the slow receiver (or the slow name) takes to answer, a few bytes at a time
# A run is cut off at the deadline when it ends well before LINGER; the slack over the deadline is for a
# loaded machine (a CI pass with several workers), never a measure of speed
SLACK = 4.0


@pytest.fixture
def settings(tmp_path, request) -> Settings:
    """Private targets allowed (the receivers listen on 127.0.0.1) unless a test asks otherwise."""
    return Settings(data_dir=Path(tmp_path) / "data", webhook_allow_private_targets=getattr(request, "param", True))


@pytest.fixture
def short_deadline(monkeypatch):
    monkeypatch.setattr(delivery, "DEADLINE", DEADLINE, raising=False)


def _a_little_at_a_time(handler: BaseHTTPRequestHandler) -> None:
    """Answers 200 after ``LINGER`` seconds, sending one header line every 0.2 s meanwhile: no single
    read waits long, so only a total bound ends the call early."""
    try:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        ends = time.monotonic() + LINGER
        while time.monotonic() < ends:
            handler.wfile.write(b"x-still-thinking: 1\r\n")
            handler.wfile.flush()
            time.sleep(0.2)
        handler.wfile.write(b"content-length: 0\r\n\r\n")
    except OSError:  # the sender gave up and closed the connection
        pass


@pytest.fixture
def dribbler():
    with slow_receiver(_a_little_at_a_time) as slow:
        yield slow


def _recorded_in_order(monkeypatch) -> list[str]:
    """The URLs of the outcomes as they are recorded."""
    order, real = [], delivery.record

    def record(tx, claimed, outcome):
        order.append(claimed.url)
        return real(tx, claimed, outcome)

    monkeypatch.setattr(delivery, "record", record)
    return order


def _attempts(network, delivery_id: str) -> list[dict]:
    return network.tx(lambda tx: delivery_detail(tx, delivery_id), readonly=True)["attempt_log"]


def test_a_receiver_answering_a_little_at_a_time_is_cut_off_at_the_deadline(network, receiver, dribbler,
                                                                            short_deadline):
    slow, fast = make_partner(network, "Slow"), make_partner(network, "Fast")
    network.tx(lambda tx: set_endpoint(tx, slow, dribbler.url()))
    register(network, receiver, fast)
    network.earn(slow, make_member(network, slow), "s1", points=5)
    network.earn(fast, make_member(network, fast), "f1", points=5)
    started = time.monotonic()
    counts = deliver_due(network)
    took = time.monotonic() - started
    assert took < DEADLINE + SLACK, f"the run took {took:.1f} s"
    assert counts["delivered"] == 1 and counts["retrying"] == 1
    [late] = deliveries(network, partner_id=slow)
    assert late.status == "pending" and late.last_status_code is None
    assert "timed out" in late.last_error
    [attempt] = _attempts(network, late.id)
    assert attempt["duration_ms"] < (DEADLINE + SLACK) * 1000
    [done] = deliveries(network, partner_id=fast)
    assert done.status == "delivered"


def test_a_slow_endpoints_many_deliveries_take_neither_every_sender_nor_the_others_turn(
        network, receiver, dribbler, short_deadline, monkeypatch):
    slow, fast = make_partner(network, "Slow"), make_partner(network, "Fast")
    network.tx(lambda tx: set_endpoint(tx, slow, dribbler.url()))
    register(network, receiver, fast)
    member = make_member(network, slow)
    for n in range(12):  # queued first: claimed first
        network.tx(lambda tx: emit(tx, "points.expiring", {"member_id": member, "points": n + 1}))
    network.earn(fast, make_member(network, fast), "f1", points=5)
    order = _recorded_in_order(monkeypatch)
    started = time.monotonic()
    counts = deliver_due(network, rounds=1)
    took = time.monotonic() - started
    # the fast partner's outcome is recorded first, not after the slow one's whole batch
    assert order[0] == receiver.url(f"/hooks/{fast}")
    assert took < 2 * DEADLINE + SLACK, f"the run took {took:.1f} s"
    # the slow endpoint's first PER_ENDPOINT deliveries were tried and timed out; the others were not
    # sent, and that used up none of their tries (docs/partner-integration.md, "Retries")
    tried = delivery.PER_ENDPOINT
    assert counts == {"delivered": 1, "retrying": tried, "dead": 0, "stale": 0, "skipped": 12 - tried}
    slow_rows = deliveries(network, partner_id=slow)
    assert len(slow_rows) == 12 and all(row.status == "pending" and row.claim_token is None for row in slow_rows)
    assert sorted(row.attempts for row in slow_rows) == [0] * (12 - tried) + [1] * tried
    for row in slow_rows:  # every outcome recorded once: a try in the attempt log, a skip not at all
        assert len(_attempts(network, row.id)) == row.attempts
    assert all("timed out" in row.last_error for row in slow_rows if row.attempts)
    assert all(row.last_error is None for row in slow_rows if not row.attempts)


@pytest.mark.parametrize("settings", [True, False], indirect=True, ids=["private-allowed", "private-refused"])
def test_a_name_that_takes_long_to_resolve_is_given_up_at_the_deadline(network, receiver, short_deadline,
                                                                       monkeypatch):
    real = socket.getaddrinfo

    def resolver(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name == "hooks.slowdns.test":
            time.sleep(LINGER)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, port, *args, **kwargs)

    slow, fast = make_partner(network, "Slow"), make_partner(network, "Fast")
    network.tx(lambda tx: set_endpoint(tx, slow, "https://hooks.slowdns.test/hooks"))
    allowed = network.settings.webhook_allow_private_targets
    if allowed:  # the other receiver listens on this machine
        register(network, receiver, fast)
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    network.earn(slow, make_member(network, slow), "s1", points=5)
    network.earn(fast, make_member(network, fast), "f1", points=5)
    order = _recorded_in_order(monkeypatch)
    started = time.monotonic()
    counts = deliver_due(network)
    took = time.monotonic() - started
    assert took < DEADLINE + SLACK, f"the run took {took:.1f} s"
    [late] = deliveries(network, partner_id=slow)
    assert late.status == "pending" and "timed out" in late.last_error
    if allowed:  # the other partner's outcome did not wait for the name
        assert counts["delivered"] == 1 and order == [receiver.url(f"/hooks/{fast}"), "https://hooks.slowdns.test/hooks"]


def _error_then_a_little_at_a_time(handler: BaseHTTPRequestHandler) -> None:
    """Answers 500 at once, then its page a byte every 0.2 s for ``LINGER`` seconds."""
    try:
        handler.send_response(500)
        handler.send_header("content-length", "1000")
        handler.end_headers()
        ends = time.monotonic() + LINGER
        while time.monotonic() < ends:
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.2)
    except OSError:  # the sender gave up and closed the connection
        pass


def test_an_error_whose_page_does_not_come_in_time_is_a_timeout(network, short_deadline):
    """A receiver that sends its status at once and its page a byte at a time past the delivery's time
    is a slow receiver: the delivery is a timeout (the status kept), the endpoint pauses and its other
    deliveries of the batch are not sent (docs/operations.md, "Timeouts"). Until 2026-12-07 it was a plain
    500: no pause, and each of the batch's deliveries to it waited out the whole time."""
    from shared.webhooks.endpoints import show_endpoint

    with slow_receiver(_error_then_a_little_at_a_time) as slow:
        shop = make_partner(network, "Slow")
        network.tx(lambda tx: set_endpoint(tx, shop, slow.url()))
        member = make_member(network, shop)
        for n in range(6):
            network.earn(shop, member, f"e{n}", points=5)
        counts = deliver_due(network, rounds=1)
    assert counts.get("skipped", 0) >= 1 and counts["retrying"] + counts["skipped"] == 6, counts
    timed_out = [d for d in deliveries(network, partner_id=shop) if d.last_status_code == 500]
    assert timed_out and all("timed out" in d.last_error for d in timed_out)
    assert network.tx(lambda tx: show_endpoint(tx, shop), readonly=True)["paused_until"] is not None
