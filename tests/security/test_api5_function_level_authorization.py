"""OWASP API5:2023 Broken function level authorization.

The partner API offers partner functions only. Operator functions (partners and contracts, keys,
clearing and settlement runs, payments, alerts, webhooks set-up, member merge and erasure, key
rotation) exist only in the ``pointsnet`` command, run by an operator on the network's machines:
no route reaches them, whatever the method, and a valid partner signature changes nothing.
"""

from __future__ import annotations

import httpx
import pytest

from tests.partner_api.conftest import assert_problem

PARTNER_ROUTES = {
    ("POST", "/v1/members"), ("POST", "/v1/members/{member_id}/link-tokens"), ("GET", "/v1/members/{member_id}"),
    ("POST", "/v1/members/{member_id}/unlink"),  # the member withdraws its consent from the partner calling
    ("GET", "/v1/members/{member_id}/history"), ("POST", "/v1/earn"), ("POST", "/v1/earn/quote"),
    ("POST", "/v1/activities"), ("POST", "/v1/burn"), ("POST", "/v1/holds"),
    ("POST", "/v1/holds/{hold_id}/capture"), ("POST", "/v1/holds/{hold_id}/void"), ("POST", "/v1/reversals"),
    ("POST", "/v1/batch"), ("GET", "/v1/transactions"), ("GET", "/v1/statements"),
    ("GET", "/v1/statements/{cycle}"), ("GET", "/v1/statements/{cycle}/statement.csv"), ("GET", "/v1/network/keys"),
    # the partner's own report and the verifiable ledger (read-only, the partner's own data or public)
    ("GET", "/v1/reports"), ("GET", "/v1/transactions/{transaction_id}/proof"), ("GET", "/v1/checkpoints/latest"),
    ("GET", "/v1/checkpoints/consistency"),
}
OPERATOR_LOOKING = [
    ("GET", "/v1/partners"), ("POST", "/v1/partners"), ("POST", "/v1/partners/ptn_x/keys"),
    ("POST", "/v1/clearing/run"), ("POST", "/v1/settlements"), ("POST", "/v1/clearing/mark-paid"),
    ("POST", "/v1/members/mem_x/erase"), ("DELETE", "/v1/members/mem_x"), ("POST", "/v1/members/merge"),
    ("POST", "/v1/keys/rotate"), ("GET", "/v1/alerts"), ("PUT", "/v1/webhooks"), ("POST", "/v1/webhooks"),
    ("GET", "/v1/admin"), ("POST", "/v1/rules"), ("PATCH", "/v1/members/mem_x"), ("PUT", "/v1/earn"),
    ("GET", "/admin"), ("GET", "/dashboard"), ("POST", "/v1/verify"),
]


def test_the_openapi_document_lists_partner_functions_only(api):
    document = httpx.get(api + "/openapi.json").json()
    offered = {(method.upper(), path) for path, item in document["paths"].items() for method in item
               if path.startswith("/v1/")}
    assert offered == PARTNER_ROUTES


@pytest.mark.parametrize("method, path", OPERATOR_LOOKING)
def test_no_operator_function_is_reachable_with_a_valid_partner_signature(shop, method, path):
    response = shop.call(method, path, {} if method in ("POST", "PUT", "PATCH") else None,
                         verify=path.startswith("/v1/"))
    # 404/405: no such function; 401: a method partners never sign (PUT, PATCH) is refused at the door
    assert response.status_code in (401, 404, 405), (method, path, response.status_code)
    codes = {401: None, 404: "not_found", 405: "method_not_allowed"}
    if codes[response.status_code]:
        assert_problem(response, response.status_code, codes[response.status_code])
    else:
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("method, path", OPERATOR_LOOKING[:6])
def test_unsigned_calls_are_refused_before_routing(api, method, path):
    response = httpx.request(method, api + path)
    assert 400 <= response.status_code < 500 and response.status_code not in (200, 201)
