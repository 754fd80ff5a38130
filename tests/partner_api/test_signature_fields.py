"""The API signs its answers with ``signature_fields`` (prepare, sign, serialize) instead of the
library's ``sign()`` (prepare, sign, apply): the fields must be exactly those ``sign()`` writes, and
verify with the library's verifier."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageVerifier, MappingKeyResolver, algorithms
from http_message_signatures.digests import ContentDigest

from services.partner_api.auth import SignedRequest
from services.partner_api.middleware import _Response
from shared.signing import POST_COMPONENTS, REQUEST_COMPONENTS, REQUEST_TAG, RESPONSE_TAG, response_components, \
    signature_fields, signer

CREATED = datetime(2026, 12, 6, 6, 0, tzinfo=timezone.utc)


def _signed_request() -> SignedRequest:
    body = b'{"member_id":"m-1","reference":"R-1","amount":12000}'
    headers = httpx.Headers({"content-type": "application/json", "idempotency-key": "k-1",
                             "content-digest": ContentDigest.create(body)})
    request = SignedRequest("POST", "https://points.example/v1/earn?x=1", headers, "/v1/earn")
    signer("pk-1", Ed25519PrivateKey.generate()).sign(
        request, key_id="pk-1", label="sig1", tag=REQUEST_TAG, nonce=secrets.token_urlsafe(12),
        covered_component_ids=REQUEST_COMPONENTS + POST_COMPONENTS, body=body, use_existing_digest=True)
    return request


def _answer(request: SignedRequest, body: bytes) -> _Response:
    return _Response(201, httpx.Headers([("content-type", "application/json"),
                                         ("content-digest", ContentDigest.create(body))]), request)


def test_signature_fields_are_the_fields_the_librarys_sign_writes_and_verify():
    key = Ed25519PrivateKey.generate()
    network = signer("net-1", key)
    request = _signed_request()
    body = b'{"entry_id":"e-1","points":120}'
    options = dict(key_id="net-1", label="pointsnet", tag=RESPONSE_TAG, created=CREATED,
                   covered_component_ids=response_components("sig1"), body=body, use_existing_digest=True)

    by_library = _answer(request, body)
    network.sign(by_library, **options)
    ours = _answer(request, body)
    fields = signature_fields(network, ours, **options)

    assert fields == (("signature-input", by_library.headers["signature-input"]),
                      ("signature", by_library.headers["signature"]))  # Ed25519 is deterministic
    for name, value in fields:
        ours.headers[name] = value
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=MappingKeyResolver(
        public_keys={"net-1": key.public_key()}, private_keys={}))
    verifier.max_clock_skew = datetime.now(timezone.utc) - CREATED + verifier.max_clock_skew
    (result,) = verifier.verify(ours, max_age=None, expect_tag=RESPONSE_TAG, expect_label="pointsnet")
    assert result.label == "pointsnet"
    assert '"signature";req;key="sig1"' in [str(c) for c in result.covered_components]  # bound to the request


def test_an_answer_whose_body_does_not_match_its_digest_is_not_signed():
    network = signer("net-1", Ed25519PrivateKey.generate())
    answer = _answer(_signed_request(), b'{"points":1}')
    try:
        signature_fields(network, answer, key_id="net-1", label="pointsnet", tag=RESPONSE_TAG,
                         covered_component_ids=response_components("sig1"), body=b'{"points":2}',
                         use_existing_digest=True)
    except Exception as exc:
        assert "digest" in str(exc).lower()
    else:
        raise AssertionError("a digest that does not match the body was signed")
