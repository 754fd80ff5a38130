"""Schemathesis over the OpenAPI document, every request signed by a standard RFC 9421 library.

Signing is added as a ``requests`` auth on the session Schemathesis sends with, so every
generated request (positive and negative) passes the door and exercises the routes. Checks:
no 5xx, documented status codes and content types, every answer matches its schema,
every answer is signed by the network and bound to its request.
"""

from __future__ import annotations

import hashlib
import base64
import json
import random
import secrets
import uuid

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, MappingKeyResolver, algorithms
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from services.partner_api.app import create_app
from tests.partner_api.conftest import GET_COMPONENTS, POST_COMPONENTS, enrol, now, response_components

DOCUMENT = create_app(None).openapi()  # the document needs no database
schema = schemathesis.openapi.from_dict(DOCUMENT).include(path_regex="^/v1/")
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=10,
                                deterministic=True)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class SignWithLibrary(requests.auth.AuthBase):
    """RFC 9421, profile pointsnet-v1, with http-message-signatures on a requests.PreparedRequest."""

    def __init__(self, key_id, key):
        self.key_id = key_id
        self.signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=MappingKeyResolver(
            public_keys={}, private_keys={key_id: key}))

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        post = request.method == "POST"
        key = request.headers.get("idempotency-key")
        # The document declares the header, so it is generated too; a key with a character that is not
        # printable cannot be a signed component (the library refuses it): a fresh one instead. Other bad
        # keys go out as they are, for the door to refuse (400 idempotency_key_invalid).
        if post and (not key or not key.replace("\t", " ").isprintable()):
            request.headers["Idempotency-Key"] = str(uuid.uuid4())
        self.signer.sign(request, key_id=self.key_id, label="fuzz", tag="pointsnet-v1", created=now(),
                         nonce=secrets.token_urlsafe(16),
                         covered_component_ids=POST_COMPONENTS if post else GET_COMPONENTS,
                         body=body if post or body else None)  # other methods (negative cases): digest any body
        return request


@pytest.fixture(scope="module")
def fuzz(module_shop):
    shop = module_shop
    member = enrol(shop, phone="+8613899990000")
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "seed", "points": 5000})
    hold = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "seed-hold", "points": 100})["hold_id"]
    session = requests.Session()
    session.auth = SignWithLibrary(shop.key_id, shop.keys[shop.key_id])
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=MappingKeyResolver(
        public_keys=shop.network_keys(), private_keys={}))
    yield {"base_url": shop.base_url, "session": session, "member": member, "hold": hold,
           "rng": random.Random(1), "verifier": verifier}
    session.close()


def _point_at_real_things(fuzz, case):
    """Half the time, aim generated ids at a real member and hold, so the routes' happy paths run too."""
    if fuzz["rng"].random() < 0.5:
        return
    for name in list(case.path_parameters or {}):
        if name == "member_id":
            case.path_parameters[name] = fuzz["member"]
        elif name == "hold_id":
            case.path_parameters[name] = fuzz["hold"]
    if isinstance(case.body, dict):
        if "member_id" in case.body:
            case.body["member_id"] = fuzz["member"]
        if "original_reference" in case.body:
            case.body["original_reference"] = "seed"
        for event in case.body.get("events", []) if isinstance(case.body.get("events"), list) else []:
            if isinstance(event, dict) and "member_id" in event:
                event["member_id"] = fuzz["member"]


class _Answer:
    def __init__(self, response):
        self.status_code = response.status_code
        self.headers = httpx.Headers(
            [(k, v) for k, values in response.headers.items() for v in (values if isinstance(values, list) else [values])])
        self.request = response.request


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_signed_requests_never_5xx_and_answers_match_the_schema(case, fuzz):
    _point_at_real_things(fuzz, case)
    response = case.call(base_url=fuzz["base_url"], session=fuzz["session"], timeout=30)
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=CHECKS)
    if case.path != "/v1/network/keys" or "signature-input" in (response.request.headers or {}):
        # answers to signed requests are signed, bound to the request, whatever the outcome
        assert response.status_code != 401, (response.request.method, response.text)  # signed right: never 401
        answer = _Answer(response)
        fuzz["verifier"].verify(answer, expect_tag="pointsnet-v1-response",
                                require_components=response_components("fuzz"), body=response.content)
        digest = base64.b64encode(hashlib.sha256(response.content).digest()).decode()
        assert f":{digest}:" in answer.headers["content-digest"]
    if response.status_code >= 400:
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert json.loads(response.content)["code"]


def test_the_document_is_the_one_served(module_shop, module_network):
    served = httpx.get(module_shop.base_url + "/openapi.json").json()
    assert served == DOCUMENT
    assert create_app(module_network).openapi() == DOCUMENT
