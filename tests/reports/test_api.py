"""``GET /v1/reports`` as a partner calls it: signed with a standard RFC 9421 library, answer verified."""

import httpx
import pytest

from shared.reports.render import csv_values, render
from shared.reports.service import build_partner
from shared.reports.period import Period
from shared.tls import tls_context
from tests.partner_api.conftest import Partner, assert_problem, serve  # noqa: F401  (fixture)


class Registered(Partner):
    """An existing partner of the scenario, given a signing key."""

    def __init__(self, network, base_url, partner_id):
        self.network, self.base_url, self.partner_id = network, base_url, partner_id
        self.keys = {}
        self.key_id = self.add_key()
        self.http = httpx.Client(base_url=base_url, timeout=60, verify=tls_context())
        self._network_keys = None


@pytest.fixture
def coffee_client(network, coalition, serve):  # noqa: F811
    client = Registered(network, serve(network), coalition["coffee"])
    yield client
    client.close()


QUERY = {"from": "2026-11-20", "to": "2026-12-15"}


def test_a_partner_gets_its_own_report_in_every_format(network, coalition, coffee_client):
    expected = build_partner(network, coalition["coffee"], Period.parse("2026-11-20", "2026-12-15"))
    answer = coffee_client.call("GET", "/v1/reports", params=QUERY)            # json by default, verified
    assert answer.status_code == 200 and answer.json() == expected
    csv = coffee_client.call("GET", "/v1/reports", params=QUERY | {"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text == render(expected, "csv")
    assert csv_values(csv.text)["money.totals.net_minor"] == "-568"
    html = coffee_client.call("GET", "/v1/reports", params=QUERY | {"format": "html"})
    assert html.headers["content-type"].startswith("text/html")
    assert 'data-key="points.issued" data-value="1900"' in html.text


def test_the_report_is_always_the_callers(network, coalition, coffee_client):
    """There is no partner parameter: anything that looks like one is ignored."""
    answer = coffee_client.call("GET", "/v1/reports", params=QUERY | {"partner_id": coalition["book"]})
    assert answer.json()["partner"]["id"] == coalition["coffee"]


@pytest.mark.parametrize("query, code", [
    ({"from": "2026-12-15", "to": "2026-11-20"}, "invalid_period"),
    ({"from": "2026-13-01", "to": "2026-12-15"}, "invalid_period"),
    ({"from": "2024-01-01", "to": "2026-12-15"}, "invalid_period"),
    ({"from": "20261120", "to": "2026-12-15"}, "invalid_period"),  # ISO 8601, but not YYYY-MM-DD
    ({"from": "2026-11-20", "to": "2026-W51-2"}, "invalid_period"),
    ({"from": "2026-11-20"}, "validation_failed"),
    (QUERY | {"format": "pdf"}, "validation_failed"),
])
def test_bad_queries_are_problems(coffee_client, query, code):
    assert_problem(coffee_client.call("GET", "/v1/reports", params=query), 422, code)


def test_unsigned_requests_are_refused(coffee_client):
    answer = coffee_client.call("GET", "/v1/reports", params=QUERY, sign=False, verify=False)
    assert_problem(answer, 401, "signature_missing")


def test_the_python_sdk_fetches_a_report(network, coalition, coffee_client):
    from shared.sdk import PointsnetClient

    client = PointsnetClient(coffee_client.base_url, coffee_client.key_id, coffee_client.keys[coffee_client.key_id])
    answer = client.call("GET", "/v1/reports", params=QUERY)
    assert answer.status == 200 and answer.body["points"]["issued"] == 1900
