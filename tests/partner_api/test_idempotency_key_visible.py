"""The Idempotency-Key is 1 to 255 *visible* ASCII characters (0x21-0x7E; partner guide, section 3):
a space inside it is refused 400 `idempotency_key_invalid` like any other character out of bounds, and
nothing is written. A key with a space kept from before that check (the door let one through then)
still replays its stored answer while the record is kept."""

from __future__ import annotations

import pytest

from shared.ledger import idempotency
from tests.partner_api.conftest import assert_problem, enrol, entry_count


@pytest.fixture
def member(shop):
    return enrol(shop)


@pytest.mark.parametrize("key", ["a b", "order 42", "x" * 100 + " " + "y" * 100])
def test_a_key_with_a_space_is_refused(shop, member, network, key):
    before = entry_count(network)
    response = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "sp1", "points": 5},
                         idempotency_key=key)
    assert_problem(response, 400, "idempotency_key_invalid")
    assert entry_count(network) == before


def test_every_visible_ascii_character_is_accepted(shop, member):
    visible = "".join(chr(c) for c in range(0x21, 0x7F))
    response = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "vis", "points": 5},
                         idempotency_key=visible)
    assert response.status_code == 200, response.text


def test_a_key_with_a_space_kept_from_before_still_replays(shop, member, network):
    """A record stored under such a key before the door refused it answers its retries as before."""
    body = {"member_id": member, "reference": "old-space", "points": 5}
    first = shop.ok("POST", "/v1/earn", body, idempotency_key="kept-before")
    # as if the door had let "kept before" through then: the very record, under the spaced key
    network.tx(lambda tx: tx.session.execute(
        idempotency.records.update().where(idempotency.records.c.key == "kept-before").values(key="kept before")))
    again = shop.call("POST", "/v1/earn", body, idempotency_key="kept before")
    assert again.status_code == 200, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first
    # a new request under another spaced key is still refused
    assert_problem(shop.call("POST", "/v1/earn", {**body, "reference": "new-space"}, idempotency_key="kept  too"),
                   400, "idempotency_key_invalid")


def test_the_openapi_document_declares_the_same_bounds(network):
    import re

    from services.partner_api.app import create_app

    document = create_app(network).openapi()
    patterns = {parameter["schema"]["pattern"] for operations in document["paths"].values()
                for operation in operations.values() if isinstance(operation, dict)
                for parameter in operation.get("parameters", []) if parameter["name"] == "Idempotency-Key"}
    assert patterns
    for pattern in patterns:
        assert re.fullmatch(pattern, "".join(chr(c) for c in range(0x21, 0x7F)))
        assert not re.fullmatch(pattern, "a b") and not re.fullmatch(pattern, "a\u00e9")


def test_requests_with_a_spaced_key_count_against_the_rate_limit(make_network, serve):
    """A spaced key is looked up (is it kept from before?) only after the request is counted: refused
    400 or not, each one counts, so a partner cannot make the network read its records without limit
    (found in review of 728af55)."""
    from tests.partner_api.conftest import Partner

    network = make_network(rate_limit="3/minute")
    shop = Partner(network, serve(network), "Busy Shop")
    try:
        for n in range(3):
            response = shop.call("POST", "/v1/earn", {"member_id": "mem_x", "reference": f"r{n}", "points": 1},
                                 idempotency_key=f"a b{n}")
            assert_problem(response, 400, "idempotency_key_invalid")
        assert_problem(shop.call("GET", "/v1/transactions"), 429, "rate_limited")
    finally:
        shop.close()
