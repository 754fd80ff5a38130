"""The partner API's rate limit asks Redis without holding the event loop: while one request waits on a
slow or silent Redis (up to the client's timeouts), the same API process goes on answering others."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
import pytest

from services.partner_api.app import create_app
from shared.config import Settings
from shared.network import Network
from tests.partner_api.conftest import Partner, Server


class SilentRedis:
    """A Redis that accepts connections, reads what it is asked and never answers (black-holed), until
    ``hang_up`` closes every connection: a client waiting on it then fails at once."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.asked = threading.Event()  # a command arrived: a request is waiting on Redis now
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        try:
            while connection.recv(65536):
                self.asked.set()
        except OSError:
            pass

    def hang_up(self) -> None:
        self.listener.close()
        for connection in self.connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()


@pytest.fixture
def silent_redis():
    redis = SilentRedis()
    yield redis
    redis.hang_up()


def test_a_request_waiting_on_a_silent_redis_does_not_stall_the_other_requests(database_url, clock, tmp_path,
                                                                              silent_redis):
    """The rate limit's Redis call ran on the event loop: for as long as Redis took to answer (its
    timeouts: 0.5 s each by default), every other request of the process — the health probe too — waited.
    Now the Redis call runs off the loop. Shown by order, not by timing (until 2026-12-07 the probe's time
    was asserted, and a loaded machine failed it): while a signed request waits on a Redis that never
    answers (timeouts of 60 s set in the URL), the health probe is answered; then Redis hangs up, and the
    waiting request fails open to this process's counters."""
    own = "socket_timeout=60&socket_connect_timeout=60"
    network = Network(Settings(data_dir=Path(tmp_path) / "data",
                               redis_url=f"redis://127.0.0.1:{silent_redis.port}/0?{own}", rate_limit="100/minute"),
                      database_url=database_url, clock=clock, pool_size=10)
    try:
        with Server(create_app(network)) as api:
            shop = Partner(network, api, "Corner Shop")
            try:
                out: dict = {}

                def slow():
                    out["answer"] = shop.call("GET", "/v1/transactions")

                waiting = threading.Thread(target=slow, daemon=True)
                waiting.start()
                assert silent_redis.asked.wait(30), "the signed request never asked Redis"
                # a stalled loop would hold the probe until Redis's 60 s timeout: the probe's own bound is
                # far above any load's delay and far below that
                probe = httpx.get(api + "/health/live", timeout=30)
                assert probe.status_code == 200
                assert waiting.is_alive() and "answer" not in out, "the request did not wait on Redis"
                silent_redis.hang_up()
                waiting.join(30)
                assert out["answer"].status_code == 200, out["answer"].text  # failed open, signed and answered
            finally:
                shop.close()
    finally:
        network.close()
