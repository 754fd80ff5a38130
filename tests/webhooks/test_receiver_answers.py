"""What a partner's receiver answers is kept for the operator's eyes only: whatever its bytes, the
attempt is recorded, and one answer never stops the job from recording the others."""

from __future__ import annotations

import threading

from shared.webhooks import delivery
from shared.webhooks.delivery import MAX_ERROR, deliver_due, delivery_detail
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import deliveries, register


def _answer(receiver, answers: dict[str, tuple[int, bytes, int | None]], hold: threading.Event | None = None):
    """The receiver answers a POST to a path with (status, body, declared length; None: the body's);
    a declared length beyond the body keeps the connection open until ``hold`` is set."""
    handler = receiver.server.RequestHandlerClass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        receiver.requests.append({"path": self.path})
        status, body, declared = answers.get(self.path, (200, b"ok", None))
        self.send_response(status)
        self.send_header("content-length", str(len(body) if declared is None else declared))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if declared is not None and hold is not None:
            hold.wait(30)  # the rest of the page never comes

    handler.do_POST = do_POST


def test_an_error_page_with_nul_bytes_is_recorded_without_them_and_the_batch_goes_on(network, clock, receiver):
    """A proxy answers 500 with a binary page (NUL bytes: PostgreSQL text cannot hold them). The
    attempt is recorded with the readable part of the answer, the other partner's message of the
    same batch is recorded as delivered, and nothing is sent twice."""
    coffee, books = make_partner(network, "Coffee"), make_partner(network, "Books")
    register(network, receiver, coffee)
    register(network, receiver, books)
    network.earn(coffee, make_member(network, coffee), "e1", points=5)
    network.earn(books, make_member(network, books), "e2", points=5)
    _answer(receiver, {f"/hooks/{coffee}": (500, b"upstream down\x00\x1f\x8b\x00" + b"x" * 5000, None)})

    assert deliver_due(network) == {"delivered": 1, "retrying": 1, "dead": 0, "stale": 0}

    failed = deliveries(network, partner_id=coffee)[0]
    assert failed.status == "pending" and failed.attempts == 1 and failed.last_status_code == 500
    assert failed.last_error.startswith("upstream down") and "\x00" not in failed.last_error
    assert len(failed.last_error) <= MAX_ERROR
    [attempt] = network.tx(lambda tx: delivery_detail(tx, failed.id), readonly=True)["attempt_log"]
    assert attempt["status_code"] == 500 and attempt["error"] == failed.last_error
    assert deliveries(network, partner_id=books)[0].status == "delivered"
    clock.advance(minutes=6)  # past the lease: only the failed one is due again (after its 5 s)
    assert deliver_due(network)["retrying"] == 1
    assert [r["path"] for r in receiver.requests].count(f"/hooks/{books}") == 1


def test_an_endless_error_page_is_read_only_as_far_as_it_is_kept(network, receiver):
    """A receiver that declares a 100 MB error page and trickles it: its status and first bytes are
    recorded at once; the sender does not wait for (or hold) the rest."""
    shop = make_partner(network)
    register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    hold = threading.Event()
    _answer(receiver, {f"/hooks/{shop}": (502, b"bad gateway " * 1000, 100_000_000)}, hold)
    try:
        assert deliver_due(network)["retrying"] == 1
    finally:
        hold.set()
    [row] = deliveries(network)
    assert row.last_status_code == 502 and row.last_error.startswith("bad gateway")


def test_an_attempt_that_cannot_be_recorded_does_not_lose_the_batch(network, receiver, monkeypatch):
    """Recording one outcome fails (whatever the reason): it is recorded once more without the
    receiver's text, and every other outcome of the batch is recorded as usual."""
    coffee, books = make_partner(network, "Coffee"), make_partner(network, "Books")
    register(network, receiver, coffee)
    register(network, receiver, books)
    network.earn(coffee, make_member(network, coffee), "e1", points=5)
    network.earn(books, make_member(network, books), "e2", points=5)
    _answer(receiver, {f"/hooks/{coffee}": (500, b"unstorable", None)})
    real = delivery.record

    def record(tx, claimed, outcome):
        if outcome.error == "unstorable":
            raise ValueError("the database refused the text")
        return real(tx, claimed, outcome)

    monkeypatch.setattr(delivery, "record", record)
    assert deliver_due(network) == {"delivered": 1, "retrying": 1, "dead": 0, "stale": 0}
    failed = deliveries(network, partner_id=coffee)[0]
    assert failed.status == "pending" and failed.last_status_code == 500 and failed.claim_token is None
    assert "unstorable" not in failed.last_error
    assert deliveries(network, partner_id=books)[0].status == "delivered"


def test_a_failed_delivery_is_logged_without_the_urls_query(network, receiver, caplog):
    """A partner may put a token its receiver checks in the URL's query; the log line of a failed delivery
    named the whole URL (until 2026-12-07). It names the address without the query now."""
    import logging

    from shared.webhooks.endpoints import set_endpoint

    coffee = make_partner(network, "Coffee")
    network.tx(lambda tx: set_endpoint(tx, coffee, receiver.url(f"/hooks/{coffee}?token=s3cr3t-T0KEN#frag")))
    network.earn(coffee, make_member(network, coffee), "e1", points=5)
    _answer(receiver, {f"/hooks/{coffee}?token=s3cr3t-T0KEN": (503, b"busy", None)})
    with caplog.at_level(logging.INFO, logger="pointsnet.webhooks"):
        assert deliver_due(network)["retrying"] == 1
    [line] = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert "s3cr3t" not in line and f"/hooks/{coffee}?…" in line and "503" in line, line
