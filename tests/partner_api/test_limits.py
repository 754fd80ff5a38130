"""Per-partner rate limit (429 + Retry-After, signed, not stored) and the request body limit."""

from __future__ import annotations

import time

import pytest

from tests.partner_api.conftest import Partner, assert_problem, enrol, entry_count


@pytest.fixture
def limited(make_network, serve):
    network = make_network(rate_limit="3/minute")
    base = serve(network)
    made = []

    def partner(name=None) -> Partner:
        made.append(Partner(network, base, name))
        return made[-1]

    yield network, partner
    for p in made:
        p.close()


def test_the_fourth_request_in_the_window_gets_429_with_retry_after(limited):
    network, partner = limited
    shop = partner("Busy Shop")
    for _ in range(3):
        assert shop.call("GET", "/v1/transactions").status_code == 200
    refused = shop.call("GET", "/v1/transactions")  # the answer is still signed and verified
    assert_problem(refused, 429, "rate_limited")
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    # per partner: another partner is not limited by the first one's traffic
    other = partner("Quiet Shop")
    assert other.call("GET", "/v1/transactions").status_code == 200


def test_a_rate_limited_post_posts_nothing(limited):
    network, partner = limited
    shop = partner()
    member = enrol(shop)  # 1
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 5})  # 2
    shop.ok("GET", f"/v1/members/{member}")  # 3
    before = entry_count(network)
    refused = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "e-2", "points": 5},
                        idempotency_key="RL-1")
    assert_problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"].isdigit()
    assert entry_count(network) == before


def test_a_rate_limited_request_is_not_stored_so_the_retry_succeeds(make_network, serve):
    # a window of 5 s, not 1 s: the two calls and the third must fall in one window, which three
    # signed round trips on a loaded 2-core machine could overrun
    network = make_network(rate_limit="2 per 5 seconds")
    shop = Partner(network, serve(network))
    try:
        member = enrol(shop)
        body = {"member_id": member, "reference": "e-1", "points": 5}
        time.sleep(5.1)  # a fresh window: two calls pass, the third inside the same window is refused
        assert [shop.call("GET", f"/v1/members/{member}").status_code for _ in range(2)] == [200, 200]
        refused = shop.call("POST", "/v1/earn", body, idempotency_key="RL-2")
        assert_problem(refused, 429, "rate_limited")
        time.sleep(int(refused.headers["retry-after"]) + 0.2)
        retry = shop.call("POST", "/v1/earn", body, idempotency_key="RL-2")
        assert retry.status_code == 200, retry.text
        assert "idempotent-replayed" not in retry.headers  # the 429 was not stored
        assert retry.json()["balance"]["available"] == 5
        assert entry_count(network, shop.partner_id) == 1
    finally:
        shop.close()


def test_a_body_over_the_limit_is_refused_with_413(make_network, serve):
    network = make_network(max_body_bytes=2000)
    shop = Partner(network, serve(network))
    try:
        member = enrol(shop)
        events = [{"type": "earn", "reference": f"r-{i}", "member_id": member, "points": 1} for i in range(100)]
        response = shop.call("POST", "/v1/batch", {"events": events})
        assert_problem(response, 413, "body_too_large")
        assert entry_count(network) == 0
    finally:
        shop.close()
