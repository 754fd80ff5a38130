"""Settings an operator may write in lower case work as documented: the partner API, signed as a
partner signs, earns in the network's currency and enrols local phone numbers (docs/operations.md,
"Configuration")."""

from __future__ import annotations

from datetime import datetime
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


# ISO 4217 list one: the places of each currency's minor unit (CLF, the Chilean unidad de fomento, has 4)
MINOR_UNITS = [("CLP", 0), ("ISK", 0), ("JPY", 0), ("CNY", 2), ("IQD", 3), ("KWD", 3), ("CLF", 4)]


@pytest.mark.parametrize("currency, places", MINOR_UNITS)
def test_a_currency_earns_and_shows_in_its_own_minor_units(tmp_path, currency, places):
    """base_rate is points per major unit: a currency missing from a short table was taken to have 2
    places, so a network in CLP (0) earned 100 times too few points and one in IQD (3) 10 times too many;
    its money was shown with the wrong decimal point on the dashboard and in reports."""
    from decimal import Decimal

    from services.dashboard.numbers import major_units, money_format
    from shared.money import currency_exponent, points_for_purchase
    from shared.reports.labels import format_money
    from shared.rules.document import parse
    from shared.rules.evaluate import evaluate

    assert Settings(data_dir=tmp_path, currency=currency.lower()).currency == currency
    assert currency_exponent(currency) == places
    one_major = 10 ** places  # minor units
    assert points_for_purchase(250 * one_major, 1_000_000, currency) == 250
    evaluation = evaluate(amount=250 * one_major, items=(), occurred_local=datetime(2026, 11, 20, 10),
                          currency=currency, contract_base_rate_micro=1_000_000, partner=parse("base_rate: 2"),
                          partner_scope="p")
    assert evaluation.partner_points == 500
    assert major_units(1234 * one_major + (5 if places else 0), currency) == (
        Decimal("1234") + (Decimal(5).scaleb(-places) if places else 0))
    assert money_format(currency)["digits"] == places
    shown = format_money(1234 * one_major, currency)
    assert ("1,234" + ("." + "0" * places if places else "")) in shown, shown


@pytest.mark.parametrize("code", ["XAU", "XXX", "XDR", "ZZZ", "HRK"])
def test_a_currency_without_iso_4217_minor_units_is_refused(tmp_path, code):
    """Gold (XAU), "no currency" (XXX) and the SDR (XDR) have no minor unit in ISO 4217; ZZZ is no
    code and HRK was withdrawn (Croatia took the euro): points per major unit cannot be computed."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="ISO 4217"):
        Settings(data_dir=tmp_path, currency=code)


def test_a_network_in_chilean_pesos_earns_a_point_per_peso(network_with, clock):
    """The reviewer's reproduction: base_rate 1 and a purchase of 5,000 CLP (no minor unit) earned 50."""
    from shared.rules.store import set_rules
    from tests.factories import make_member, make_partner

    network = network_with(currency="CLP")
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1"))
    clock.advance(seconds=1)
    assert network.earn(partner, member, "o", amount=5_000, currency="CLP")["points"] == 5_000


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
