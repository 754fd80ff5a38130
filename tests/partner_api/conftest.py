"""A real partner API (uvicorn on 127.0.0.1, free port) and partners that talk to it the way an
integrator without Pointsnet code would: httpx + ``http-message-signatures`` + ``cryptography``.

Only the registration of a partner and its keys (server-side set-up) uses Pointsnet code.
Every signed request's answer is checked against the network key served at
``GET /v1/network/keys``, exactly as the design's "Response signatures" says.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import http_sf
import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, MappingKeyResolver, algorithms
from sqlalchemy import func, select

from services.partner_api.app import create_app
from shared.config import Settings
from shared.models import Entry
from shared.network import Network
from shared.partners.keys import add_key
from shared.tls import tls_context
from tests.factories import make_partner
from tests.quick_server import QuickServer

REQUEST_TAG = "pointsnet-v1"
RESPONSE_TAG = "pointsnet-v1-response"
GET_COMPONENTS = ("@method", "@authority", "@path", "@query")
POST_COMPONENTS = GET_COMPONENTS + ("content-digest", "idempotency-key")
PROBLEM = "application/problem+json"
AUTO = object()


def response_components(label: str) -> tuple[str, ...]:
    return ('"@status"', '"content-digest"', '"@method";req', '"@path";req', '"@query";req',
            f'"signature";req;key="{label}"')


def pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def now() -> datetime:
    return datetime.now(timezone.utc)


class Server:
    """uvicorn in a daemon thread, bound to 127.0.0.1 on a free port."""

    def __init__(self, app):
        self.server = QuickServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                 lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Partner:
    """A partner merchant: its id, its Ed25519 key(s), and a signing HTTP client."""

    def __init__(self, network: Network, base_url: str, name: str | None = None):
        self.network = network
        self.base_url = base_url
        self.partner_id = make_partner(network, name)
        self.keys: dict[str, Ed25519PrivateKey] = {}
        self.key_id = self.add_key()
        self.http = httpx.Client(base_url=base_url, timeout=60, verify=tls_context())  # one TLS context per process
        self._network_keys: dict[str, Ed25519PublicKey] | None = None

    def add_key(self, key: Ed25519PrivateKey | None = None) -> str:
        key = key or Ed25519PrivateKey.generate()
        key_id = self.network.tx(lambda tx: add_key(tx, self.partner_id, pem(key)))["key_id"]
        self.keys[key_id] = key
        return key_id

    # -- building and signing --------------------------------------------------------------
    def build(self, method: str, path: str, body=None, *, params=None, idempotency_key=AUTO,
              content: bytes | None = None, sign: bool = True, **sign_options) -> httpx.Request:
        method = method.upper()
        if content is None:
            content = json.dumps(body).encode() if body is not None else b""
        headers = {"content-type": "application/json"} if content else {}
        if idempotency_key is AUTO:
            idempotency_key = str(uuid.uuid4()) if method == "POST" else None
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        request = self.http.build_request(method, path, content=content or None, headers=headers, params=params)
        if sign:
            self.sign(request, **sign_options)
        return request

    def sign(self, request: httpx.Request, *, key_id: str | None = None, key: Ed25519PrivateKey | None = None,
             label: str = "sig1", tag: str | None = REQUEST_TAG, nonce=AUTO, created: datetime | None = None,
             components=None, sign_body=AUTO, include_alg: bool = True, algorithm=algorithms.ED25519,
             use_existing_digest: bool = False) -> httpx.Request:
        """Sign ``request`` in place with the library alone (real time unless ``created`` is given)."""
        key_id = key_id or self.key_id
        key = key if key is not None else self.keys.get(key_id) or self.keys[self.key_id]
        if components is None:
            components = POST_COMPONENTS if request.method == "POST" else GET_COMPONENTS
        body = (request.content if request.method == "POST" else None) if sign_body is AUTO else sign_body
        signer = HTTPMessageSigner(signature_algorithm=algorithm,
                                   key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: key}))
        signer.sign(request, key_id=key_id, label=label, tag=tag, created=created or now(),
                    nonce=secrets.token_urlsafe(16) if nonce is AUTO else nonce, include_alg=include_alg,
                    covered_component_ids=components, body=body, use_existing_digest=use_existing_digest)
        return request

    # -- sending ---------------------------------------------------------------------------
    def send(self, request: httpx.Request, *, verify: bool = True) -> httpx.Response:
        response = self.http.send(request)
        if verify:
            self.verify(response)
        return response

    def call(self, method: str, path: str, body=None, *, verify: bool = True, **kwargs) -> httpx.Response:
        return self.send(self.build(method, path, body, **kwargs), verify=verify)

    def ok(self, method: str, path: str, body=None, *, status: int | tuple = (200, 201), **kwargs) -> dict:
        response = self.call(method, path, body, **kwargs)
        statuses = status if isinstance(status, tuple) else (status,)
        assert response.status_code in statuses, response.text
        assert response.headers["content-type"].startswith("application/json")
        return response.json()

    # -- response signatures -----------------------------------------------------------------
    def network_keys(self) -> dict[str, Ed25519PublicKey]:
        if self._network_keys is None:
            answer = self.http.get("/v1/network/keys")  # unsigned, as the design allows
            assert answer.status_code == 200, answer.text
            keys = {}
            for jwk in answer.json()["keys"]:
                assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519"), jwk
                x = jwk["x"]
                keys[jwk["kid"]] = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
            self._network_keys = keys
        return self._network_keys

    def verify(self, response: httpx.Response):
        """The answer carries a network signature bound to the request it answers."""
        label = request_label(response.request)
        assert label is not None, "the request carries no pointsnet-v1 signature to bind to"
        assert "signature" in response.headers, f"unsigned answer {response.status_code}: {response.text}"
        verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=MappingKeyResolver(
            public_keys=self.network_keys(), private_keys={}))
        [result] = verifier.verify(response, expect_tag=RESPONSE_TAG, require_components=response_components(label),
                                   body=response.content)
        assert result.parameters["alg"] == "ed25519"
        return result

    def close(self) -> None:
        self.http.close()


def request_label(request: httpx.Request) -> str | None:
    """The label of the request's signature (its ``pointsnet-v1`` one if tagged), read with a generic SF parser."""
    try:
        inputs = http_sf.parse(request.headers["signature-input"].encode(), tltype="dictionary")
    except Exception:
        return None
    tagged = [label for label, (_, params) in inputs.items() if params.get("tag") == REQUEST_TAG]
    return next(iter(tagged or inputs), None)


def rebuild(request: httpx.Request, *, method: str | None = None, url=None, content: bytes | None = None,
            set_headers: dict | None = None, drop_headers: tuple[str, ...] = ()) -> httpx.Request:
    """The same request after signing, with one thing changed (headers, signature included, kept)."""
    dropped = {"content-length", "host", *(name.lower() for name in drop_headers)}
    headers = httpx.Headers([(k, v) for k, v in request.headers.multi_items() if k.lower() not in dropped])
    for name, value in (set_headers or {}).items():
        headers[name] = value
    body = request.content if content is None else content
    return httpx.Request(method or request.method, url or request.url, headers=headers, content=body or None)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    """An RFC 9457 problem with the expected status and stable code."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM, response.headers["content-type"]
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status and body["title"] and body["detail"] and body["type"], body
    return body


def entry_count(network: Network, partner_id: str | None = None) -> int:
    def count(tx):
        query = select(func.count()).select_from(Entry)
        if partner_id is not None:
            query = query.where(Entry.partner_id == partner_id)
        return tx.session.execute(query).scalar_one()

    return network.tx(count, readonly=True)


@pytest.fixture
def serve():
    """Start an API server for a network; stopped at the end of the test."""
    servers: list[Server] = []

    def start(network: Network) -> str:
        server = Server(create_app(network))
        servers.append(server)
        return server.__enter__()

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def api(network, serve) -> str:
    return serve(network)


@pytest.fixture
def partners(network, api):
    """A factory of partners talking to ``api``."""
    made: list[Partner] = []

    def make(name: str | None = None) -> Partner:
        partner = Partner(network, api, name)
        made.append(partner)
        return partner

    yield make
    for partner in made:
        partner.close()


@pytest.fixture
def shop(partners) -> Partner:
    return partners("Coffee Shop")


@pytest.fixture
def make_network(database_url, clock, tmp_path):
    """Another Network over the test database, with its own settings (rate limits, authority, ...)."""
    made: list[Network] = []

    def make(**settings) -> Network:
        net = Network(Settings(data_dir=Path(tmp_path) / f"data-{len(made)}", **settings),
                      database_url=database_url, clock=clock, pool_size=10)
        made.append(net)
        return net

    yield make
    for net in made:
        net.close()


def enrol(partner: Partner, **fields) -> str:
    fields.setdefault("phone", f"+86139{secrets.randbelow(10**8):08d}")
    return partner.ok("POST", "/v1/members", fields)["member_id"]


# -- one network, server and partner for a whole module (read-mostly modules: tampers, fuzzing) --

@pytest.fixture(scope="module")
def module_network(template_db, tmp_path_factory):
    """A fresh database for the module. Do not mix with function-scoped ``network`` tests in one
    module: on PostgreSQL those truncate the shared database."""
    import shutil

    from shared.clock import FixedClock
    from tests.conftest import PG_URL, START, _reset_postgres

    if PG_URL:
        _reset_postgres(PG_URL)
        url = PG_URL
    else:
        path = tmp_path_factory.mktemp("module-db") / "pointsnet.db"
        shutil.copyfile(template_db, path)
        url = f"sqlite:///{path}"
    net = Network(Settings(data_dir=tmp_path_factory.mktemp("module-data")), database_url=url,
                  clock=FixedClock(START), pool_size=20)
    yield net
    net.close()


@pytest.fixture(scope="module")
def module_shop(module_network):
    with Server(create_app(module_network)) as base_url:
        partner = Partner(module_network, base_url, "Module Shop")
        yield partner
        partner.close()
