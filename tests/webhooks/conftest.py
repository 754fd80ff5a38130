"""A real HTTP receiver on 127.0.0.1 and verifiers that use only public libraries."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from unittest import mock

import pytest
import standardwebhooks.webhooks as standard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from shared.members.consent import unlink
from shared.models import WebhookDelivery
from shared.partners.lifecycle import terminate
from shared.webhooks.endpoints import set_endpoint
from tests.factories import make_member, make_partner
from tests.quick_server import POLL_INTERVAL


class Receiver:
    """Records every request per path; answers with scripted statuses (then 200)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[int] = []
        self.always: int | None = None
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "body": body.decode()})
                    status = receiver.script.pop(0) if receiver.script else (receiver.always or 200)
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(POLL_INTERVAL,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def at(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def register(network, receiver: Receiver, partner_id: str) -> dict:
    """Point the partner's endpoint at /hooks/<partner id> on the receiver."""
    return network.tx(lambda tx: set_endpoint(tx, partner_id, receiver.url(f"/hooks/{partner_id}")))


def verify_v1(secret: str, request: dict, at: datetime):
    """Verify with the standardwebhooks library, its 5-minute tolerance taken around ``at``
    (the network's simulated time) instead of the wall clock."""
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return at

    with mock.patch.object(standard, "datetime", Frozen):
        return standard.Webhook(secret).verify(request["body"], request["headers"])


def verify_v1a(public_key: Ed25519PublicKey, request: dict) -> None:
    """Ed25519 over ``{id}.{timestamp}.{body}``; raises InvalidSignature when wrong."""
    headers = {k.lower(): v for k, v in request["headers"].items()}
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{request['body']}".encode()
    [signature] = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ") if s.startswith("v1a,")]
    public_key.verify(base64.b64decode(signature), signed)


def bodies(requests: list[dict]) -> list[dict]:
    return [json.loads(r["body"]) for r in requests]


def deliveries(network, **where) -> list[WebhookDelivery]:
    def unit(tx):
        query = select(WebhookDelivery).order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        for name, value in where.items():
            query = query.where(getattr(WebhookDelivery, name) == value)
        return tx.session.execute(query).scalars().all()
    return network.tx(unit, readonly=True)


class ConsentCases(NamedTuple):
    shop: str
    books: str
    gone: str
    ordinary: str
    withdrawn: str
    erased: str
    gone_member: str


def consent_cases(network, endpoint: Callable[[str], object]) -> ConsentCases:
    """Each case of a message its partner may no longer hear, beside one it may: partners Shop, Books and
    Gone, each with an endpoint (``endpoint(partner_id)``), and an earn for each of their members (Shop's
    ``ordinary``, ``withdrawn`` and ``erased``, Books' ``withdrawn`` too, Gone's ``gone_member``); then
    ``withdrawn`` withdraws its consent from Shop, ``erased`` is erased and Gone is terminated."""
    shop, books, gone = (make_partner(network, name) for name in ("Shop", "Books", "Gone"))
    for partner in (shop, books, gone):
        endpoint(partner)
    ordinary = make_member(network, shop)
    withdrawn = make_member(network, shop, also_linked_to=(books,))
    erased = make_member(network, shop)
    gone_member = make_member(network, gone)
    for n, (partner, member) in enumerate([(shop, ordinary), (shop, withdrawn), (books, withdrawn),
                                           (shop, erased), (gone, gone_member)]):
        network.earn(partner, member, f"e{n}", points=5 + n)
    network.tx(lambda tx: unlink(tx, shop, withdrawn, requested_by="operator"))
    network.erase_member(erased)
    network.tx(lambda tx: terminate(tx, gone))
    return ConsentCases(shop, books, gone, ordinary, withdrawn, erased, gone_member)
