"""What one signed single earn and one burn send to the database, statement by statement.

A single request's cost is mostly its statements: on PostgreSQL each is a round trip and a few
tenths of a millisecond of Python and of the server's CPU (docs/benchmarks.md, issue 9). These tests
pin the numbers for a warmed-up request — the partner, the member and the day's cycle exist, an earn
and a burn were posted before — so a change that adds a statement or a round trip to the request,
its door (key, nonce) and its idempotency record included, fails here and is a decision, not an
accident. They count statements, never time.

On PostgreSQL the count is taken on the wire: a proxy between the API and the server reads the
client's protocol messages, so it sees what SQLAlchemy's events do not (the journal's pipeline, the
pool's ping, BEGIN and COMMIT). A statement is an Execute or a simple Query; a round trip is a Sync
or a simple Query (the client then waits for the server's answer). On SQLite the driver's trace
callback sees every statement SQLite runs.

When a change removes a statement on purpose, lower the numbers here (and say why in its commit).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import Counter

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from services.partner_api.app import create_app
from shared.db.database import normalise_url
from shared.network import Network
from tests.api.conftest import Partner, Server
from tests.factories import make_member

# (statements, round trips) of one warmed-up request, door and idempotency record included; since
# 2745789 one of them reads the member's lots past expiry (and holds past timeout, with points held) so
# that the balance answered is the one a spend would find (shared/ledger/due.py)
POSTGRES = {"earn": (26, 22), "burn": (26, 21)}
SQLITE = {"earn": 23, "burn": 23}
WARM_UP = 6  # per kind: past psycopg's prepare threshold (5), so no Parse of its own is counted


class WireCounter:
    """A TCP proxy to PostgreSQL that counts the messages the client sends (protocol 3)."""

    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.messages: Counter = Counter()
        self.queries: list[str] = []
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.queries.clear()

    def counts(self) -> tuple[int, int]:
        """(statements, round trips) since the last reset."""
        with self.lock:
            return (self.messages["E"] + self.messages["Q"], self.messages["S"] + self.messages["Q"])

    def close(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            threading.Thread(target=self._relay, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._relay, args=(server, client, False), daemon=True).start()

    def _relay(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        pending, started = b"", False
        try:
            while data := source.recv(65536):
                if from_client:
                    pending, started = self._read(pending + data, started)
                target.sendall(data)
        except OSError:
            pass
        finally:
            target.close()

    def _read(self, data: bytes, started: bool) -> tuple[bytes, bool]:
        """Count the whole messages in ``data``; returns what is left of a message still arriving."""
        while True:
            if not started:  # the startup message has no type byte
                if len(data) < 4 or len(data) < struct.unpack("!I", data[:4])[0]:
                    return data, started
                data, started = data[struct.unpack("!I", data[:4])[0]:], True
                continue
            if len(data) < 5 or len(data) < 1 + struct.unpack("!I", data[1:5])[0]:
                return data, started
            kind, length = data[:1].decode(), struct.unpack("!I", data[1:5])[0]
            with self.lock:
                self.messages[kind] += 1
                if kind == "Q":
                    self.queries.append(data[5:1 + length].rstrip(b"\0").decode(errors="replace"))
            data = data[1 + length:]


def _through(counter: WireCounter, url: str) -> str:
    parsed = make_url(normalise_url(url))
    query = dict(parsed.query, sslmode="disable")  # the proxy reads the protocol in the clear
    return parsed.set(host="127.0.0.1", port=counter.port, query=query).render_as_string(hide_password=False)


@pytest.fixture
def counted(settings, database_url, clock):
    """(network, how to count): a network whose every statement is counted."""
    if database_url.startswith("sqlite"):
        traced: list[str] = []
        network = Network(settings, database_url=database_url, clock=clock, pool_size=2)
        event.listen(network.db.engine, "connect",
                     lambda dbapi, _record: dbapi.set_trace_callback(traced.append))
        counter = None
    else:
        parsed = make_url(normalise_url(database_url))
        counter = WireCounter(parsed.host or "127.0.0.1", parsed.port or 5432)
        network = Network(settings, database_url=_through(counter, database_url), clock=clock, pool_size=2)
        traced = []
    try:
        yield network, counter, traced
    finally:
        network.close()
        if counter is not None:
            counter.close()


def _one_request(network, counter, traced, partner: Partner, path: str, body: dict):
    """Send one request; returns what it cost: (statements, round trips) on PostgreSQL, statements on SQLite."""
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(" ".join(statement.split())[:160])

    if counter is not None:
        counter.reset()
    traced.clear()
    event.listen(network.db.engine, "before_cursor_execute", seen)
    try:
        response = partner.call("POST", path, body)
    finally:
        event.remove(network.db.engine, "before_cursor_execute", seen)
    assert response.status_code == 200, response.text
    if counter is None:
        return len(traced), traced[:]
    # what SQLAlchemy sent and the simple queries, to read when a count is off
    return counter.counts(), statements + counter.queries


def test_a_warmed_up_single_earn_and_burn_send_the_pinned_statements(counted):
    network, counter, traced = counted
    with Server(create_app(network)) as base_url:
        partner = Partner(network, base_url)
        member = make_member(network, partner.partner_id)
        try:
            for n in range(WARM_UP):  # the day's cycle, the first earn, the prepared statements
                for path, body in (("/v1/earn", {"member_id": member, "reference": f"warm-{n}", "amount": 12000}),
                                   ("/v1/burn", {"member_id": member, "reference": f"warm-b{n}", "points": 3})):
                    assert partner.call("POST", path, body).status_code == 200
            earn, earn_sent = _one_request(network, counter, traced, partner, "/v1/earn",
                                           {"member_id": member, "reference": "E-1", "amount": 15000})
            burn, burn_sent = _one_request(network, counter, traced, partner, "/v1/burn",
                                           {"member_id": member, "reference": "B-1", "points": 7})
        finally:
            partner.http.close()
    pinned = POSTGRES if counter is not None else SQLITE
    assert earn == pinned["earn"], "a single earn now sends:\n" + "\n".join(earn_sent)
    assert burn == pinned["burn"], "a single burn now sends:\n" + "\n".join(burn_sent)
