"""Only cursors the API gave out page a list: each is authenticated by the network (an HMAC under a key
derived from its signing key) and bound to its list and the partner it was given to (and to the
member, for a member's history). Anything else — made up, edited, another list's or another
partner's — is 422 validation_failed, on all three lists."""

from __future__ import annotations

import base64
import copy
import json
from datetime import date, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.network import Network
from tests.partner_api.conftest import Partner, assert_problem, enrol


def opaque(value) -> str:
    """A cursor as this API gave them out before they were authenticated: base64url of the position."""
    text = value if isinstance(value, str) else json.dumps(value)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def refused(partner, path: str, cursor: str) -> None:
    assert_problem(partner.call("GET", path, params={"cursor": cursor}), 422, "validation_failed")


@pytest.fixture
def posted(shop) -> str:
    member = enrol(shop)
    for n in range(4):
        shop.ok("POST", "/v1/earn", {"member_id": member, "reference": f"p{n}", "points": 1})
    return member


def test_well_formed_positions_the_api_never_gave_out_are_refused(shop, posted):
    for forged in (["2020-01-01T00:00:00+00:00", "ent_forged"], [0, "ent_forged"], [1, ""]):
        refused(shop, "/v1/transactions", opaque(forged))
        refused(shop, f"/v1/members/{posted}/history", opaque(forged))
    for forged in ("2030-01-01", "2026-11-20"):
        refused(shop, "/v1/statements", opaque(forged))


def test_a_cursor_given_out_pages_and_an_edited_one_does_not(shop, posted):
    for path in ("/v1/transactions", f"/v1/members/{posted}/history"):
        given = shop.ok("GET", path, params={"limit": 1})["next_cursor"]
        assert shop.call("GET", path, params={"limit": 1, "cursor": given}).status_code == 200
        payload, tag = given.split(".")
        position = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        moved = [position[0] + 1 if isinstance(position[0], int) else "2099-01-01T00:00:00+00:00", position[1]]
        flipped = tag[:-1] + ("A" if tag[-1] != "A" else "B")
        for cursor in (f"{opaque(moved)}.{tag}", f"{payload}.{flipped}", payload, f"{payload}.{tag}.{tag}",
                       f"{payload}={tag}", f"{payload}.{tag}=", given.upper(), f"{payload}.", "é" + given):
            refused(shop, path, cursor)


def test_a_cursor_is_bound_to_its_list_its_partner_and_its_member(shop, partners, posted):
    rival = partners("Book Shop")
    other_member = enrol(shop)
    rival_member = enrol(rival)
    shop.ok("POST", "/v1/earn", {"member_id": other_member, "reference": "o1", "points": 1})
    shop.ok("POST", "/v1/earn", {"member_id": other_member, "reference": "o2", "points": 1})
    for n in range(2):
        rival.ok("POST", "/v1/earn", {"member_id": rival_member, "reference": f"r{n}", "points": 1})
    transactions = shop.ok("GET", "/v1/transactions", params={"limit": 1})["next_cursor"]
    history = shop.ok("GET", f"/v1/members/{posted}/history", params={"limit": 1})["next_cursor"]
    refused(rival, "/v1/transactions", transactions)  # another partner's
    refused(shop, f"/v1/members/{other_member}/history", history)  # another member's
    refused(shop, f"/v1/members/{posted}/history", transactions)  # another list's
    refused(shop, "/v1/transactions", history)
    refused(shop, "/v1/statements", transactions)
    # the member is linked to both partners: the history is the same, the cursor still the shop's
    token = shop.ok("POST", f"/v1/members/{posted}/link-tokens", {})["link_token"]
    rival.ok("POST", "/v1/members", {"link_token": token})
    refused(rival, f"/v1/members/{posted}/history", history)
    assert rival.call("GET", f"/v1/members/{posted}/history",
                      params={"cursor": rival.ok("GET", f"/v1/members/{posted}/history",
                                                 params={"limit": 1})["next_cursor"]}).status_code == 200


def test_statement_cursors_are_authenticated_too(network, clock, shop, partners):
    from tests.partner_api.test_statements import settled_days

    other = partners("Book Shop")
    settled_days(network, clock, shop, other, 3)
    given = shop.ok("GET", "/v1/statements", params={"limit": 1})["next_cursor"]
    second = shop.ok("GET", "/v1/statements", params={"limit": 1, "cursor": given})["statements"]
    payload = given.split(".")[0]
    day = date.fromisoformat(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
    assert [s["cycle_date"] for s in second] == [(day - timedelta(days=1)).isoformat()]
    refused(shop, "/v1/statements", opaque(day.isoformat()))  # the same position, not authenticated
    refused(shop, "/v1/statements", f"{opaque(json.dumps((day + timedelta(days=1)).isoformat()))}."
                                    f"{given.split('.')[1]}")
    refused(other, "/v1/statements", given)


def same_partner_at(partner: Partner, base_url: str) -> Partner:
    """The partner, with its keys, talking to another API server."""
    other = copy.copy(partner)
    other.base_url, other._network_keys = base_url, None
    other.http = httpx.Client(base_url=base_url, timeout=60)
    return other


def test_another_api_process_with_the_network_key_takes_the_cursor_and_another_key_does_not(
        shop, posted, network, settings, serve, make_network, clock, tmp_path):
    """Any API process of the network verifies a cursor another gave out (the key is derived from the
    network's signing key, which they share); a network with another signing key refuses it."""
    given = shop.ok("GET", "/v1/transactions", params={"limit": 1})["next_cursor"]
    twin = Network(settings, database_url=network.db.url, clock=clock, pool_size=5)
    beside = same_partner_at(shop, serve(twin))
    # the same database, a signing key of its own: configured (a process with no key makes none for a
    # network that has sealed members: tests/cli/test_keys_existing_network.py)
    other_key = tmp_path / "other-signing-key.pem"
    other_key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    stranger = same_partner_at(shop, serve(make_network(
        signing_key_file=other_key, pii_keys_file=settings.data_dir / "keys" / "pii-keys.json")))
    try:
        assert beside.ok("GET", "/v1/transactions", params={"limit": 1, "cursor": given})["transactions"]
        refused(stranger, "/v1/transactions", given)
    finally:
        beside.close()
        stranger.close()
        twin.close()
