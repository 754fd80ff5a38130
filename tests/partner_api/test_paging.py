"""Cursor paging of a partner's transactions and a member's history: every entry exactly once, in
order, however the pages fall across entries that share an instant (a batch posts all its entries
at one ``posted_at``); a cursor the API did not give out is refused with 422."""

from __future__ import annotations

import base64
import json

from tests.partner_api.conftest import assert_problem, enrol


def pages(partner, path: str, key: str, limit: int) -> list[dict]:
    seen, cursor = [], None
    while True:
        page = partner.ok("GET", path, params={"limit": limit, **({"cursor": cursor} if cursor else {})})
        assert len(page[key]) <= limit
        seen += page[key]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def history(shop, clock):
    member, other = enrol(shop), enrol(shop)
    shop.ok("POST", "/v1/batch", {"events": [
        {"type": "earn", "reference": f"batch-{n}", "member_id": (member, other)[n % 3 == 2], "points": n + 1}
        for n in range(9)]})
    for n in range(3):
        clock.advance(seconds=1)
        shop.ok("POST", "/v1/earn", {"reference": f"single-{n}", "member_id": member, "points": 100 + n})
    return member


def test_transactions_page_through_every_entry_once_in_order(shop, clock):
    history(shop, clock)
    everything = shop.ok("GET", "/v1/transactions", params={"limit": 1000})["transactions"]
    assert len(everything) == 9 + 3
    for limit in (1, 2, 4, 5):
        paged = pages(shop, "/v1/transactions", "transactions", limit)
        assert [t["transaction_id"] for t in paged] == [t["transaction_id"] for t in everything], limit
    order = [(t["posted_at"], t["transaction_id"]) for t in everything]
    assert order == sorted(order) and len(set(order)) == len(order)


def test_a_members_history_pages_newest_first_through_every_entry_once(shop, clock):
    member = history(shop, clock)
    everything = shop.ok("GET", f"/v1/members/{member}/history", params={"limit": 500})["movements"]
    assert len(everything) == 6 + 3
    for limit in (1, 2, 4):
        paged = pages(shop, f"/v1/members/{member}/history", "movements", limit)
        assert [m["transaction_id"] for m in paged] == [m["transaction_id"] for m in everything], limit
    order = [(m["posted_at"], m["transaction_id"]) for m in everything]
    assert order == sorted(order, reverse=True)


def test_a_cursor_the_api_did_not_give_out_is_refused(shop, clock):
    history(shop, clock)
    given = shop.ok("GET", "/v1/transactions", params={"limit": 2})["next_cursor"]
    payload, tag = given.split(".")  # the position, and the network's tag over it
    xid, entry_id = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    for forged in ([xid - 1, entry_id], [xid, 7], "not a pair"):
        body = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        for cursor in (body, f"{body}.{tag}"):
            refused = shop.call("GET", "/v1/transactions", params={"cursor": cursor})
            assert_problem(refused, 422, "validation_failed")
