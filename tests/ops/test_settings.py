"""Settings an operator may write in lower case work as documented: the partner API, signed as a
partner signs, earns in the network's currency and enrols local phone numbers (docs/operations.md,
"Configuration")."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.partner_api.app import create_app
from shared.config import Settings
from shared.network import Network
from tests.partner_api.conftest import Partner, Server


@pytest.fixture
def network_with(database_url, clock, tmp_path):
    """A network over the test database whose settings are the given variables' values."""
    made: list[Network] = []

    def make(**settings) -> Network:
        network = Network(Settings(data_dir=Path(tmp_path) / "data", **settings), database_url=database_url,
                          clock=clock, pool_size=10)
        made.append(network)
        return network

    yield make
    for network in made:
        network.close()


def test_a_currency_written_in_lower_case_earns_in_that_currency(network_with):
    """POINTSNET_CURRENCY=jpy was compared as typed with the partner's upper-cased code: every earn
    stating its currency was refused `currency JPY is not the network's (jpy)`."""
    network = network_with(currency="jpy")
    with Server(create_app(network)) as api:
        shop = Partner(network, api, "Ramen Shop")
        try:
            member = shop.ok("POST", "/v1/members", {"phone": "+8613812345678"})["member_id"]
            for reference, currency in (("r1", "JPY"), ("r2", "jpy")):
                earned = shop.ok("POST", "/v1/earn", {"member_id": member, "reference": reference, "amount": 1000,
                                                      "currency": currency})
                assert earned["points"] > 0, earned
            other = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "r3", "amount": 1000,
                                                   "currency": "CNY"})
            assert other.status_code == 422 and other.json()["code"] == "invalid_amount", other.text
            assert "(JPY)" in other.json()["detail"]
        finally:
            shop.close()


def test_a_default_region_written_in_lower_case_enrols_local_phone_numbers(network_with):
    """POINTSNET_DEFAULT_REGION=cn made every number written without a country code unreadable
    (`Missing or invalid default region`): no partner could enrol anyone that way."""
    network = network_with(default_region="cn")
    with Server(create_app(network)) as api:
        shop = Partner(network, api, "Tea House")
        try:
            local = shop.ok("POST", "/v1/members", {"phone": "13812345678"}, status=201)
            again = shop.ok("POST", "/v1/members", {"phone": "+86 138 1234 5678"})  # the same number
            assert local["member_id"].startswith("mem_") and again["member_id"] == local["member_id"]
        finally:
            shop.close()


@pytest.mark.parametrize("redis_url", ["redis://:secret@127.0.0.1:1/0", "redis+cluster://:secret@127.0.0.1:1"])
def test_an_unreachable_redis_fails_open_to_this_process_limits_with_a_warning(network_with, caplog, redis_url):
    """POINTSNET_REDIS_URL naming a Redis that does not answer: a plain redis:// URL answered every
    signed request with an unsigned text/plain 500, a redis+cluster:// one every request at all, the
    health probe included (the cluster client connects when the gate is built). Both now keep
    answering, limited by this process's own counters, and say so in the log (docs/operations.md)."""
    import httpx

    network = network_with(redis_url=redis_url, rate_limit="3/minute")
    with caplog.at_level("WARNING", logger="pointsnet.api"), Server(create_app(network)) as api:
        assert httpx.get(api + "/health/live").status_code == 200
        shop = Partner(network, api, "Corner Shop")
        try:
            for _ in range(3):
                answer = shop.call("GET", "/v1/transactions")  # signed by the network, verified
                assert answer.status_code == 200, answer.text
            limited = shop.call("GET", "/v1/transactions")
            assert limited.status_code == 429 and limited.json()["code"] == "rate_limited", limited.text
        finally:
            shop.close()
    warnings = [record for record in caplog.records if record.name == "pointsnet.api"
                and record.levelname == "WARNING" and "POINTSNET_REDIS_URL" in record.getMessage()]
    assert len(warnings) == 1, [record.getMessage() for record in caplog.records]  # once, not per request
    assert not any("secret" in record.getMessage() for record in caplog.records)  # a Redis URL may hold a password


@pytest.fixture(params=["reads nothing", "completes no connection"])
def silent_redis(request):
    """A listening socket that never answers (a black-holed Redis: silence, not a refusal). "reads
    nothing": the kernel completes each connection and nothing is ever read or written; "completes no
    connection": its one-place queue is taken, so a connection attempt hears nothing back at all."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    queued = []
    if request.param == "reads nothing":
        listener.listen(64)
    else:
        listener.listen(0)
        queued.append(socket.create_connection(("127.0.0.1", port), timeout=1))  # fills the queue
    yield port
    for sock in queued + [listener]:
        sock.close()


def _timed_hit(counters, seconds: float = 10.0) -> tuple[object, float]:
    """One hit of the counters in a thread (a regression fails the test, it never hangs the run)."""
    import threading
    import time

    from limits import parse

    out: dict = {}

    def run():
        started = time.monotonic()
        try:
            out["answer"] = counters.hit(parse("3/minute"), "ptn_1")
        except Exception as exc:  # the test asserts on it
            out["answer"] = exc
        out["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert "seconds" in out, f"still waiting for Redis after {seconds} s"
    return out["answer"], out["seconds"]


@pytest.mark.parametrize("scheme", ["redis", "redis+cluster", "redis+sentinel"])
def test_a_silent_redis_fails_open_within_a_second(silent_redis, scheme):
    """A Redis that accepts connections but never answers held each request for the client's socket
    timeout (redis-py 5 has none: for ever; later ones 5 s), and the API's requests wait on the rate
    limit in turn. The client's connect and read timeouts are 0.5 s unless POINTSNET_REDIS_URL sets its
    own: the request fails open to this process's counters within a second."""
    from services.partner_api.middleware import RateCounters

    url = f"{scheme}://127.0.0.1:{silent_redis}" + ("/mymaster" if scheme == "redis+sentinel" else "/0"
                                                     if scheme == "redis" else "")
    counters = RateCounters(url)
    answer, seconds = _timed_hit(counters)
    assert answer is None and seconds < 1.5, (answer, seconds)  # let in, counted by this process
    assert counters.down_until is not None  # and the outage is noted: Redis is asked again in 10 s


def test_the_redis_urls_own_timeouts_are_kept(silent_redis):
    """A timeout the URL sets is the client's (redis-py reads a plain URL's query; limits reads none of a
    cluster's or sentinel's, so the gate passes them on)."""
    from services.partner_api.middleware import RateCounters, redis_storage_options

    own = "socket_timeout=1.5&socket_connect_timeout=1.5"
    answer, seconds = _timed_hit(RateCounters(f"redis://127.0.0.1:{silent_redis}/0?{own}"))
    assert answer is None and 1.4 < seconds < 3, (answer, seconds)
    assert redis_storage_options("redis://h:6379/0") == {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    assert redis_storage_options("rediss://h:6379/0?socket_timeout=2") == {"socket_connect_timeout": 0.5}
    assert redis_storage_options("redis+cluster://h:1,g:2?socket_timeout=2&socket_connect_timeout=3") == {
        "socket_connect_timeout": 3.0, "socket_timeout": 2.0}
    assert redis_storage_options("redis+sentinel://h:26379/svc") == {
        "socket_connect_timeout": 0.5, "socket_timeout": 0.5,
        "sentinel_kwargs": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
