"""OWASP API8:2023 Security misconfiguration: no stack trace or internal detail in any answer,
problem+json for every error, and headers that stop browsers sniffing, framing or caching answers.

See also tests/partner_api/test_errors.py (an injected fault answers a signed 500 without its message)."""

from __future__ import annotations

import httpx
import pytest

from services.partner_api import routes
from tests.partner_api.conftest import enrol

INTERNALS = ("Traceback", "File \"", ".py", "sqlalchemy", "psycopg", "sqlite3", "RuntimeError", "/work/", "site-packages")


def _no_internals(response: httpx.Response) -> None:
    for marker in INTERNALS:
        assert marker not in response.text, (marker, response.text)


def _security_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" in response.headers


def test_a_database_failure_answers_a_problem_without_internals(shop, monkeypatch):
    member = enrol(shop)

    def broken(*args, **kwargs):
        from sqlalchemy.exc import OperationalError

        raise OperationalError("SELECT secret FROM members", {}, Exception("db at /work/data exploded"))

    monkeypatch.setattr(routes, "member_balance", broken)
    response = shop.call("GET", f"/v1/members/{member}", verify=False)
    assert response.status_code == 500 and response.headers["content-type"].startswith("application/problem+json")
    _no_internals(response)
    assert "SELECT" not in response.text and "exploded" not in response.text


@pytest.mark.parametrize("method, path, content", [
    ("POST", "/v1/earn", b"{not json"), ("POST", "/v1/earn", b"[]"), ("POST", "/v1/earn", b"\xff\xfe"),
    ("GET", "/v1/members/" + "x" * 5000, None), ("GET", "/v1/statements/not-a-date", None),
    ("GET", "/v1/transactions?limit=-1&cursor=%00", None),
])
def test_malformed_requests_answer_problems_without_internals(shop, method, path, content):
    response = shop.send(shop.build(method, path, content=content), verify=False)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    _no_internals(response)
    _security_headers(response)


def test_every_kind_of_answer_carries_the_security_headers(shop, api):
    member = enrol(shop)
    for response in (shop.call("GET", f"/v1/members/{member}"),  # a signed success
                     shop.call("GET", "/v1/members/mem_nobody"),  # a signed problem
                     httpx.post(api + "/v1/earn", json={}),  # refused at the door, unsigned
                     httpx.get(api + "/v1/network/keys"),  # an unsigned public route
                     httpx.get(api + "/health/live"), httpx.get(api + "/openapi.json")):
        _security_headers(response)
    docs = httpx.get(api + "/docs")
    assert docs.headers["x-content-type-options"] == "nosniff" and "content-security-policy" not in docs.headers


def test_the_server_does_not_announce_its_internals(shop):
    response = shop.call("GET", "/v1/transactions")
    assert "x-powered-by" not in response.headers
    assert "python" not in response.headers.get("server", "").lower()
