"""The partner API's rate limit asks Redis without holding the event loop: while one request waits on a
slow or silent Redis (up to the client's timeouts), the same API process goes on answering others."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from services.partner_api.app import create_app
from shared.config import Settings
from shared.network import Network
from tests.partner_api.conftest import Partner, Server


@pytest.fixture
def silent_redis():
    """A Redis that accepts connections and never answers (black-holed)."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()


def test_a_request_waiting_on_a_silent_redis_does_not_stall_the_other_requests(database_url, clock, tmp_path,
                                                                              silent_redis):
    """The rate limit's Redis call ran on the event loop: for as long as Redis took to answer (its
    timeouts: 0.5 s each by default, here 3 s set in the URL), every other request of the process — the
    health probe too — waited. Now the Redis call runs off the loop; the waiting request still fails open
    to this process's counters."""
    own = "socket_timeout=3&socket_connect_timeout=3"
    network = Network(Settings(data_dir=Path(tmp_path) / "data", redis_url=f"redis://127.0.0.1:{silent_redis}/0?{own}",
                               rate_limit="100/minute"), database_url=database_url, clock=clock, pool_size=10)
    try:
        with Server(create_app(network)) as api:
            assert httpx.get(api + "/health/live").status_code == 200  # the app is built before timing
            shop = Partner(network, api, "Corner Shop")
            try:
                out: dict = {}

                def slow():
                    out["answer"] = shop.call("GET", "/v1/transactions")

                waiting = threading.Thread(target=slow, daemon=True)
                waiting.start()
                time.sleep(0.8)  # the signed request is now waiting on Redis (up to 3 s)
                started = time.monotonic()
                probe = httpx.get(api + "/health/live", timeout=10)
                probe_seconds = time.monotonic() - started
                waiting.join(15)
                assert probe.status_code == 200
                assert probe_seconds < 0.5, f"the health probe waited {probe_seconds:.2f} s behind Redis"
                assert out["answer"].status_code == 200, out["answer"].text  # failed open, signed and answered
            finally:
                shop.close()
    finally:
        network.close()
