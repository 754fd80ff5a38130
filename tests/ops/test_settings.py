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
