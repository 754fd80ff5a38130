"""A batch's earn events take item lines like POST /v1/earn (the doc: "the fields and bounds of the single
calls"); other events refuse them. Until 2026-12-04 a batch earn with items was 422 validation_failed."""

from __future__ import annotations

import pytest

from shared.rules.store import set_rules
from tests.partner_api.conftest import assert_problem, enrol, entry_count

BOOKS = {"sku": "B-1", "category": "books", "amount": 3000, "quantity": 1}
TEA = {"sku": "T-1", "category": "tea", "amount": 2000, "quantity": 2}


@pytest.fixture
def member(shop, network) -> str:
    network.tx(lambda tx: set_rules(tx, shop.partner_id, "base_rate: 1\ncategories: {books: 2}\n"))
    member_id = enrol(shop, phone="+8613812340000")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 100})
    return member_id


def test_a_batch_earn_with_items_earns_what_the_single_earn_earns(shop, member):
    single = shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "s-1", "amount": 5000,
                                          "items": [BOOKS, TEA]})
    assert single["points"] == 80  # 30.00 of books at 2 + 20.00 of tea at 1
    answer = shop.ok("POST", "/v1/batch", {"events": [
        {"type": "earn", "reference": "b-1", "member_id": member, "amount": 5000, "items": [BOOKS, TEA]},
        {"type": "earn", "reference": "b-2", "member_id": member, "amount": 5000}]})
    assert [r["status"] for r in answer["results"]] == [200, 200]
    assert [r["result"]["points"] for r in answer["results"]] == [80, 50]


def test_items_on_a_batch_burn_are_refused_and_nothing_posts(shop, member, network):
    before = entry_count(network)
    problem = assert_problem(shop.call("POST", "/v1/batch", {"events": [
        {"type": "earn", "reference": "b-3", "member_id": member, "points": 5},
        {"type": "burn", "reference": "b-4", "member_id": member, "points": 5, "items": [BOOKS]}]}),
        422, "validation_failed")
    assert "items belong to earns" in problem["detail"]
    assert entry_count(network) == before
