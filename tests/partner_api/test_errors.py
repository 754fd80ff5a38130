"""Problem details and signatures on every answer, including the unexpected ones; header limits."""

from __future__ import annotations

import pytest

import services.partner_api.routes as routes
from tests.partner_api.conftest import PROBLEM, assert_problem, enrol, entry_count


@pytest.fixture
def member(shop) -> str:
    return enrol(shop)


def test_an_idempotency_key_of_255_characters_is_accepted(shop, member):
    response = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "k255", "points": 5},
                         idempotency_key="k" * 255)
    assert response.status_code == 200, response.text


def test_an_idempotency_key_over_255_characters_is_refused_not_a_500(shop, member, network):
    """docs/partner-integration.md: 'any unique string <= 255 chars'. The ledger's own check
    (shared/ledger/idempotency.run_once) refuses longer keys; the API path must too."""
    response = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "k256", "points": 5},
                         idempotency_key="k" * 256, verify=False)
    assert response.status_code in (400, 422), (response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == "idempotency_key_invalid"
    shop.verify(response)
    assert entry_count(network) == 0


def test_an_empty_idempotency_key_is_refused(shop, member, network):
    response = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "k0", "points": 5},
                         idempotency_key="")
    assert response.status_code in (400, 422), (response.status_code, response.text[:200])
    assert response.json()["code"] in ("idempotency_key_missing", "idempotency_key_invalid", "validation_failed")
    assert entry_count(network) == 0


def test_an_unexpected_error_is_a_signed_problem(shop, member, monkeypatch):
    """Design: errors are problem+json; every answer to a signed request is signed."""
    def broken(*args, **kwargs):
        raise RuntimeError("injected fault")

    monkeypatch.setattr(routes, "member_balance", broken)
    response = shop.call("GET", f"/v1/members/{member}", verify=False)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    assert response.json()["code"]
    assert "injected fault" not in response.text  # no internals leak
    shop.verify(response)


def test_unknown_routes_and_methods_answer_signed_problems(shop):
    assert_problem(shop.call("GET", "/v1/nowhere"), 404, "not_found")
    assert_problem(shop.call("DELETE", "/v1/transactions"), 405, "method_not_allowed")


def test_malformed_json_is_a_problem_and_not_stored(shop, member):
    bad = shop.call("POST", "/v1/earn", content=b'{"member_id": ', idempotency_key="MJ-1")
    assert bad.status_code in (400, 422), bad.text
    assert bad.headers["content-type"].startswith(PROBLEM) and bad.json()["code"]
    good = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "mj", "points": 5},
                     idempotency_key="MJ-1")
    assert good.status_code == 200, good.text


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_json_body_without_its_content_type_is_refused_naming_the_header(shop, member, network, content_type):
    """A POS that forgets ``Content-Type: application/json`` (curl's -d sends form data) is told which header
    to send, not only that the body 'does not match the API' (found by the curl-and-openssl partner review)."""
    request = shop.build("POST", "/v1/earn", {"member_id": member, "reference": "ct", "points": 5}, sign=False)
    del request.headers["content-type"]
    if content_type:
        request.headers["content-type"] = content_type
    response = shop.send(shop.sign(request), verify=False)
    assert_problem(response, 422, "validation_failed")
    assert "Content-Type: application/json" in response.json()["detail"], response.json()
    assert response.json()["errors"] == [{"field": "body", "message": response.json()["errors"][0]["message"]}]
    assert "Content-Type" in response.json()["errors"][0]["message"]
    shop.verify(response)
    assert entry_count(network) == 0


def test_a_bad_query_without_a_body_is_not_blamed_on_the_content_type(shop):
    response = shop.call("GET", "/v1/transactions", params={"limit": "many"}, verify=False)
    assert_problem(response, 422, "validation_failed")
    assert "Content-Type" not in response.text and response.json()["errors"][0]["field"] == "limit"


def test_a_database_failure_at_the_door_is_a_signed_problem_not_plain_text(shop, member, network, monkeypatch):
    """Found by the file-system faults review: with the database's disk full (or the database unreachable),
    the signature check's nonce write failed and the API answered an unsigned text/plain 500, which the
    guide's "errors are problem+json" does not allow. Nothing is posted; the retry with the same
    Idempotency-Key succeeds once the database answers."""
    from sqlalchemy.exc import OperationalError

    import services.partner_api.auth as auth

    real = auth.remember_nonce

    def full_disk(*args, **kwargs):
        raise OperationalError("INSERT INTO request_nonces", {}, Exception("database or disk is full"))

    monkeypatch.setattr(auth, "remember_nonce", full_disk)
    body = {"member_id": member, "reference": "door-1", "points": 5}
    failed = shop.call("POST", "/v1/earn", body, idempotency_key="door-key", verify=False)
    problem = assert_problem(failed, 500, "internal_error")
    assert "disk is full" not in failed.text and "INSERT" not in failed.text, problem
    shop.verify(failed)
    assert entry_count(network) == 0
    monkeypatch.setattr(auth, "remember_nonce", real)
    assert shop.call("POST", "/v1/earn", body, idempotency_key="door-key").status_code == 200
    assert entry_count(network) == 1
