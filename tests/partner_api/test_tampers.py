"""Every single tamper of an otherwise valid signed request is refused.

Each case changes exactly one thing; the answer is 401 problem+json with its own stable code,
nothing is posted, and the answer (when the request's signature can be read) is still signed
by the network and bound to that request. One server and partner for the module (the cases
only read, and every refusal must leave the database as it was).
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import algorithms
from http_message_signatures.digests import ContentDigest

from tests.partner_api.conftest import GET_COMPONENTS, POST_COMPONENTS, assert_problem, enrol, entry_count, now, rebuild


@pytest.fixture(scope="module")
def member(module_shop) -> str:
    member_id = enrol(module_shop, phone="+8613812345678")
    module_shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 1000})
    return member_id


def earn_body(member: str, reference: str = "t-1", points: int = 5) -> dict:
    return {"member_id": member, "reference": reference, "points": points}


# -- tampered ---------------------------------------------------------------------------------

def _tampered(shop, member, network, how: str) -> tuple[httpx.Request, str]:
    """One valid signed earn (or read), then exactly one thing changed. Returns (request, expected code)."""
    body = earn_body(member)
    signed = shop.build("POST", "/v1/earn", body)
    if how == "method":
        return rebuild(signed, method="PUT"), "signature_invalid"
    if how == "path":
        return rebuild(signed, url=signed.url.copy_with(path="/v1/burn")), "signature_invalid"
    if how == "query":
        return rebuild(signed, url=signed.url.copy_with(query=b"dry_run=1")), "signature_invalid"
    if how == "query_of_get":
        read = shop.build("GET", "/v1/transactions", params={"limit": 1})
        return rebuild(read, url=read.url.copy_with(query=b"limit=2")), "signature_invalid"
    if how == "body":
        return rebuild(signed, content=signed.content.replace(b'"points": 5', b'"points": 500')), "digest_mismatch"
    if how == "content_digest_recomputed":  # a forger recomputes the digest: the signature covers it
        content = signed.content.replace(b'"points": 5', b'"points": 500')
        return rebuild(signed, content=content, set_headers={"content-digest": ContentDigest.create(content)}), \
            "signature_invalid"
    if how == "idempotency_key":
        return rebuild(signed, set_headers={"idempotency-key": "another-key"}), "signature_invalid"
    if how == "authority":
        return rebuild(signed, set_headers={"host": f"localhost:{signed.url.port}"}), "signature_invalid"
    if how == "created_too_old":
        return shop.build("POST", "/v1/earn", body, created=now() - timedelta(seconds=400)), "signature_expired"
    if how == "created_in_future":
        return shop.build("POST", "/v1/earn", body, created=now() + timedelta(seconds=400)), "signature_expired"
    if how == "keyid_unknown":
        return shop.build("POST", "/v1/earn", body, key_id="key_doesnotexist", key=shop.keys[shop.key_id]), \
            "key_unknown"
    if how == "other_private_key":  # the partner's keyid, someone else's key
        return shop.build("POST", "/v1/earn", body, key=Ed25519PrivateKey.generate()), "signature_invalid"
    if how == "signature_bytes":
        label, value = signed.headers["signature"].split("=", 1)
        raw = bytearray(base64.b64decode(value.strip(":")))
        raw[10] ^= 0x01
        return rebuild(signed, set_headers={"signature": f"{label}=:{base64.b64encode(bytes(raw)).decode()}:"}), \
            "signature_invalid"
    if how == "wrong_tag":
        return shop.build("POST", "/v1/earn", body, tag="pointsnet-v2"), "signature_tag_invalid"
    if how == "no_tag":
        return shop.build("POST", "/v1/earn", body, tag=None), "signature_tag_invalid"
    if how == "no_alg":
        return shop.build("POST", "/v1/earn", body, include_alg=False), "signature_alg_invalid"
    if how == "wrong_alg":  # a valid HMAC-SHA256 signature, keyed with the partner's keyid
        secret = secrets.token_bytes(32)
        return shop.build("POST", "/v1/earn", body, key=secret, algorithm=algorithms.HMAC_SHA256), \
            "signature_alg_invalid"
    for component in POST_COMPONENTS:
        if how == f"not_covered:{component}":
            components = tuple(c for c in POST_COMPONENTS if c != component)
            # the header is sent (and right); it just is not covered by the signature
            request = shop.build("POST", "/v1/earn", body, sign=False)
            request.headers["content-digest"] = ContentDigest.create(request.content)
            shop.sign(request, components=components, sign_body=None, use_existing_digest=True)
            return request, "signature_component_missing"
    if how == "not_covered_get:@authority":
        return shop.build("GET", "/v1/transactions", components=("@method", "@path", "@query")), \
            "signature_component_missing"
    if how == "missing_signature":
        return shop.build("POST", "/v1/earn", body, sign=False), "signature_missing"
    if how == "missing_signature_header":  # Signature-Input alone
        return rebuild(signed, drop_headers=("signature",)), "signature_missing"
    if how == "malformed_signature_input":
        return rebuild(signed, set_headers={"signature-input": "sig1=(((not a dictionary"}), "signature_malformed"
    if how == "digest_mismatch":  # a signed Content-Digest of other content
        request = shop.build("POST", "/v1/earn", body, sign=False)
        request.headers["content-digest"] = ContentDigest.create(b'{"other": "content"}')
        shop.sign(request, sign_body=None, use_existing_digest=True)
        return request, "digest_mismatch"
    if how == "digest_missing":  # a POST signed without any Content-Digest at all
        request = shop.build("POST", "/v1/earn", body, components=GET_COMPONENTS + ("idempotency-key",), sign_body=None)
        return request, "signature_component_missing"
    raise AssertionError(how)


TAMPERS = ["method", "path", "query", "query_of_get", "body", "content_digest_recomputed", "idempotency_key",
           "authority", "created_too_old", "created_in_future", "keyid_unknown", "other_private_key",
           "signature_bytes", "wrong_tag", "no_tag", "no_alg", "wrong_alg",
           *[f"not_covered:{c}" for c in POST_COMPONENTS], "not_covered_get:@authority", "missing_signature",
           "missing_signature_header", "malformed_signature_input", "digest_mismatch", "digest_missing"]
UNBOUND = {"missing_signature", "missing_signature_header", "malformed_signature_input"}


@pytest.mark.parametrize("how", TAMPERS)
def test_each_single_tamper_is_refused_with_its_code(module_shop, member, module_network, how):
    shop, network = module_shop, module_network
    before = entry_count(network)
    request, code = _tampered(shop, member, network, how)
    response = shop.send(request, verify=how not in UNBOUND)
    assert_problem(response, 401, code)
    assert entry_count(network) == before, "a refused request posted something"


