"""The door's order: the signature is checked first (every 401), then the Idempotency-Key (400); and a
path with a trailing slash is an unknown path, not a redirect.

Found by review: a POST signed with a revoked key and no Idempotency-Key answered 400
idempotency_key_missing, not 401 key_revoked (the key was checked before the signature); and
``GET /v1/transactions/`` answered a signed 307 to the API's internal plain-http address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.partners.keys import revoke_key
from tests.partner_api.conftest import assert_problem, enrol, entry_count, now, rebuild


@pytest.fixture
def member(shop) -> str:
    return enrol(shop)


def earn(member: str, reference: str = "o-1") -> dict:
    return {"member_id": member, "reference": reference, "points": 5}


def without_key(shop, member, **sign_options):
    """A POST signed over its Idempotency-Key (as every POST must be), sent without that header."""
    request = shop.build("POST", "/v1/earn", earn(member), idempotency_key="K-1", **sign_options)
    return shop.send(rebuild(request, drop_headers=("idempotency-key",)))


def test_a_revoked_key_without_an_idempotency_key_is_401_key_revoked(shop, member, network):
    network.tx(lambda tx: revoke_key(tx, shop.key_id))
    assert_problem(without_key(shop, member), 401, "key_revoked")
    assert_problem(shop.call("POST", "/v1/earn", earn(member), idempotency_key=None,
                             components=("@method", "@authority", "@path", "@query", "content-digest")),
                   401, "signature_component_missing")
    assert_problem(shop.call("POST", "/v1/earn", earn(member), idempotency_key="a b"), 401, "key_revoked")
    assert entry_count(network) == 0


def test_a_signature_that_does_not_verify_comes_before_an_invalid_idempotency_key(shop, member, network):
    stranger = Ed25519PrivateKey.generate()
    assert_problem(shop.call("POST", "/v1/earn", earn(member), idempotency_key="a b", key=stranger),
                   401, "signature_invalid")
    assert_problem(shop.call("POST", "/v1/earn", earn(member), idempotency_key="k" * 256, key=stranger),
                   401, "signature_invalid")
    assert_problem(without_key(shop, member, created=now() - timedelta(seconds=900)), 401, "signature_expired")
    assert_problem(without_key(shop, member, key_id="key_nobody", key=stranger), 401, "key_unknown")
    assert entry_count(network) == 0


def test_a_well_signed_post_without_its_idempotency_key_is_400_and_its_nonce_is_not_spent(shop, member, network):
    response = without_key(shop, member, nonce="kept-nonce")
    assert_problem(response, 400, "idempotency_key_missing")
    assert entry_count(network) == 0
    # the signature could not be verified without the header: its nonce is still the partner's to use
    assert shop.call("POST", "/v1/earn", earn(member, "o-2"), nonce="kept-nonce").status_code == 200


def test_a_well_signed_post_with_an_invalid_idempotency_key_is_400(shop, member, network):
    for key in ("a b", "k" * 256, ""):
        response = shop.call("POST", "/v1/earn", earn(member), idempotency_key=key)
        assert_problem(response, 400, "idempotency_key_missing" if key == "" else "idempotency_key_invalid")
    assert entry_count(network) == 0


# -- a trailing slash -----------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [("GET", "/v1/transactions/"), ("GET", "/v1/statements/"),
                                          ("POST", "/v1/earn/"), ("POST", "/v1/members/")])
def test_a_trailing_slash_is_not_found_and_never_redirects(shop, member, network, method, path):
    response = shop.call(method, path, earn(member) if method == "POST" else None)  # the answer is signed
    assert_problem(response, 404, "not_found")
    assert "location" not in response.headers
    assert entry_count(network) == 0
