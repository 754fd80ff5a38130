"""Writes that meet a closed settlement cycle: a refusal about the network's timing, not about the
purchase, so it is never kept for the Idempotency-Key; and a request that began in a day that has
ended since is run again in the open cycle instead (ARCHITECTURE "Idempotency", "Transactions")."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from shared.ledger import posting as posting_module
from shared.ledger.cycles import close_cycle, cycle_date_for
from tests.partner_api.conftest import assert_problem, enrol


@pytest.fixture
def member(shop) -> str:
    member_id = enrol(shop, phone="+8613812340007")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 10})
    return member_id


def balance(shop, member) -> int:
    return shop.ok("GET", f"/v1/members/{member}")["balance"]["available"]


def test_a_closed_cycle_refusal_is_not_kept_for_the_key(shop, member, network, clock):
    """An operator closed today's cycle before the day ended: writes are refused 409 ``cycle_closed``,
    single ones and batches, and the refusal is not kept, so the same key posts once the next day opens."""
    today = cycle_date_for(clock.now(), network.settings)
    network.tx(lambda tx: close_cycle(tx, today))
    earn = {"member_id": member, "reference": "till-1", "points": 100}
    batch = {"events": [{"type": "earn", "member_id": member, "reference": "till-2", "points": 5}]}
    assert_problem(shop.call("POST", "/v1/earn", earn, idempotency_key="pos-1"), 409, "cycle_closed")
    assert_problem(shop.call("POST", "/v1/batch", batch, idempotency_key="pos-2"), 409, "cycle_closed")
    paths = shop.http.get("/openapi.json").json()["paths"]
    for path in ("/v1/earn", "/v1/batch"):  # the batch's entry did not list it until 2026-12-07
        assert "`cycle_closed`" in paths[path]["post"]["responses"]["409"]["description"], path
    clock.advance(days=1)
    retried = shop.call("POST", "/v1/earn", earn, idempotency_key="pos-1")
    assert retried.status_code == 200, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert retried.json()["cycle_date"] > today.isoformat()
    retried_batch = shop.call("POST", "/v1/batch", batch, idempotency_key="pos-2")
    assert retried_batch.status_code == 200 and retried_batch.json()["accepted"] == 1, retried_batch.text
    assert balance(shop, member) == 115


@pytest.mark.postgres
def test_an_earn_in_flight_at_midnight_posts_into_the_next_cycle(shop, member, network, clock, monkeypatch):
    """A POS sends an earn a moment before the business day ends; before its unit reaches the cycle's
    row the day is closed and settled (``pointsnet clearing run --cycle <day>`` at 00:00:01). The unit
    is run again at the network's new time and posts into the open cycle, and a retry with the same key
    replays that answer; before, it was refused 409 ``cycle_closed`` and that refusal kept for the key,
    so the member's points could never be posted under it."""
    clock.set(datetime(2026, 11, 20, 15, 59, 59, tzinfo=timezone.utc))  # 23:59:59 in Asia/Shanghai
    day = cycle_date_for(clock.now(), network.settings)
    reached, released = threading.Event(), threading.Event()
    real = posting_module.partner_with_terms

    def pause_once(tx, partner_id, cycle_date):  # the earn has read its partner, not yet the cycle's row
        result = real(tx, partner_id, cycle_date)
        if not reached.is_set():
            reached.set()
            released.wait(10)
        return result

    monkeypatch.setattr(posting_module, "partner_with_terms", pause_once)
    earn = {"member_id": member, "reference": "till-7", "points": 100}
    answers = {}
    pos = threading.Thread(daemon=True, target=lambda: answers.setdefault(
        "first", shop.call("POST", "/v1/earn", earn, idempotency_key="pos-key-1")))
    pos.start()
    assert reached.wait(10)
    clock.advance(seconds=2)  # 00:00:01: the operator settles the day that just ended
    settled = network.settle(day)
    released.set()
    pos.join(15)
    assert not pos.is_alive()
    assert not settled["already_settled"]
    first = answers["first"]
    assert first.status_code == 200, first.text
    assert first.json()["cycle_date"] == cycle_date_for(clock.now(), network.settings).isoformat() > day.isoformat()
    retry = shop.call("POST", "/v1/earn", earn, idempotency_key="pos-key-1")
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true", retry.text
    assert retry.json() == first.json()
    assert balance(shop, member) == 110
