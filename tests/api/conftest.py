"""A real partner API server on 127.0.0.1 per test, and clients that sign like a partner would."""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from services.partner_api.app import create_app
from shared.partners.keys import add_key
from shared.signing import public_key_pem
from shared.tls import tls_context
from tests.factories import make_partner
from tests.quick_server import QuickServer

POST_COMPONENTS = ("@method", "@authority", "@path", "@query", "content-digest", "idempotency-key")
GET_COMPONENTS = ("@method", "@authority", "@path", "@query")


class Server:
    def __init__(self, app):
        self.server = QuickServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the API server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def api(network):
    with Server(create_app(network)) as base_url:
        yield base_url


class Partner:
    """A partner integrating without Pointsnet code: httpx + http-message-signatures only."""

    def __init__(self, network, base_url: str, name: str | None = None, **terms):
        self.partner_id = make_partner(network, name, **terms)
        self.key = Ed25519PrivateKey.generate()
        self.key_id = network.tx(lambda tx: add_key(tx, self.partner_id, public_key_pem(self.key.public_key()).decode()))["key_id"]
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30, verify=tls_context())
        self.signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=MappingKeyResolver(
            public_keys={}, private_keys={self.key_id: self.key}))

    def build(self, method: str, path: str, body=None, *, idempotency_key: str | None = None, sign: bool = True,
              **sign_options) -> httpx.Request:
        if isinstance(body, (bytes, str)):
            content = body.encode() if isinstance(body, str) else body
        else:
            content = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else {}
        if method == "POST":
            headers["idempotency-key"] = idempotency_key or str(uuid.uuid4())
        request = self.http.build_request(method, path, content=content, headers=headers)
        if sign:
            options = {"key_id": self.key_id, "label": "sig1", "tag": "pointsnet-v1",
                       "nonce": secrets.token_urlsafe(12),
                       "covered_component_ids": POST_COMPONENTS if method == "POST" else GET_COMPONENTS}
            options.update(sign_options)
            self.signer.sign(request, body=content or b"" if method == "POST" else None, **options)
        return request

    def send(self, request: httpx.Request) -> httpx.Response:
        return self.http.send(request)

    def call(self, method: str, path: str, body=None, **kwargs) -> httpx.Response:
        return self.send(self.build(method, path, body, **kwargs))

    def enrol(self, **fields) -> str:
        response = self.call("POST", "/v1/members", fields)
        assert response.status_code in (200, 201), response.text
        return response.json()["member_id"]


@pytest.fixture
def partner_factory(network, api):
    made = []

    def make(name=None, **terms):
        partner = Partner(network, api, name, **terms)
        made.append(partner)
        return partner

    yield make
    for partner in made:
        partner.http.close()
