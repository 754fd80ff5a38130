"""A refusal is kept for its Idempotency-Key in a unit of its own, after the refused unit rolled back.

Between the two the key is free, and a twin in another API process (same key, another body) could take
it: the twin posted, and the first request — refused, and the first to use the key — was then answered
422 ``idempotency_key_reused`` ("first used for a different request"), which was false, and told the
partner nothing of why its request failed. It is answered its own refusal now, not kept: the key stands for
the twin's request, whose retries replay it.

Another process is stood in for by emptying this process's in-flight set (its twins answer at once
without asking the database), so the test runs on both databases.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from services.partner_api import exactly_once
from tests.partner_api.conftest import assert_problem, enrol


class NoTwinsHere(set):
    """The in-flight set of another process: it never holds this one's requests."""

    def __contains__(self, item) -> bool:
        return False


@pytest.fixture
def member(shop) -> str:
    member_id = enrol(shop, phone="+8613812340000")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 100})
    return member_id


def burns(network, member) -> list[tuple]:
    query = text("SELECT reference, points FROM entries WHERE member_id = :m AND kind = 'burn' ORDER BY reference")
    return [tuple(row) for row in network.tx(lambda tx: tx.session.execute(query, {"m": member}).all(),
                                             readonly=True)]


def test_a_twin_in_the_gap_leaves_the_first_its_own_refusal(shop, member, network, monkeypatch):
    monkeypatch.setattr(exactly_once, "_inflight", NoTwinsHere())
    reached, release = threading.Event(), threading.Event()
    keep = exactly_once._store_refusal

    def paused(*args, **kwargs):
        if not reached.is_set():
            reached.set()
            release.wait(30)
        return keep(*args, **kwargs)

    monkeypatch.setattr(exactly_once, "_store_refusal", paused)
    too_much = {"member_id": member, "reference": "b-gap", "points": 500}
    answers = {}
    first = threading.Thread(target=lambda: answers.update(
        first=shop.call("POST", "/v1/burn", too_much, idempotency_key="KG")))
    first.start()
    try:
        assert reached.wait(30), "the first request was not refused"
        twin = shop.call("POST", "/v1/burn", {**too_much, "points": 5}, idempotency_key="KG")
    finally:
        release.set()
        first.join(30)
    assert twin.status_code == 200, twin.text
    problem = assert_problem(answers["first"], 409, "insufficient_points")
    assert "idempotent-replayed" not in answers["first"].headers
    assert problem["code"] == "insufficient_points"
    # the key stands for the twin's request: its retry replays it, the refused body is a reused key
    again = shop.call("POST", "/v1/burn", {**too_much, "points": 5}, idempotency_key="KG")
    assert again.status_code == 200 and again.headers.get("idempotent-replayed") == "true", again.text
    assert again.json()["transaction_id"] == twin.json()["transaction_id"]
    assert_problem(shop.call("POST", "/v1/burn", too_much, idempotency_key="KG"), 422, "idempotency_key_reused")
    assert burns(network, member) == [("b-gap", 5)]


def test_without_a_twin_the_refusal_is_kept(shop, member, network):
    too_much = {"member_id": member, "reference": "b-kept", "points": 500}
    assert_problem(shop.call("POST", "/v1/burn", too_much, idempotency_key="KK"), 409, "insufficient_points")
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "more", "points": 1000})
    again = shop.call("POST", "/v1/burn", too_much, idempotency_key="KK")
    assert_problem(again, 409, "insufficient_points")
    assert again.headers.get("idempotent-replayed") == "true"
    assert burns(network, member) == []
