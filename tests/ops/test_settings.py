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
