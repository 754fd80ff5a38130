"""OWASP API3:2023 Broken object property level authorization (mass assignment, excessive exposure).

A partner cannot set a property it does not own by adding it to a body (balances, status, the
partner or funder, lots, obligation amounts): every request schema forbids unknown fields, so the
request is refused as a whole (422) and nothing is posted. Answers expose no property a partner
should not see (another partner's customer ref, contact data, ciphertexts, key ids).
"""

from __future__ import annotations

import pytest

from tests.partner_api.conftest import assert_problem, enrol, entry_count

SMUGGLED = {"partner_id": "ptn_other", "available": 10**9, "held": 0, "status": "active", "billing": "network",
            "funder_partner_id": None, "amount_micro": 1, "lots": [{"points": 10**9}], "is_admin": True,
            "tier": "gold", "erased_at": None, "phone_ct": "v1.k0.x"}


@pytest.fixture
def member(shop) -> str:
    member_id = enrol(shop, phone="+8613855557777", email="p3@example.com", customer_ref="C-3")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 100})
    return member_id


@pytest.mark.parametrize("field", sorted(SMUGGLED))
@pytest.mark.parametrize("path, body", [
    ("/v1/earn", {"reference": "e", "points": 5}),
    ("/v1/burn", {"reference": "b", "points": 5}),
    ("/v1/holds", {"reference": "h", "points": 5}),
])
def test_an_unexpected_field_refuses_the_request_and_posts_nothing(shop, member, network, path, body, field):
    before = entry_count(network)
    response = shop.call("POST", path, {**body, "member_id": member, field: SMUGGLED[field]})
    problem = assert_problem(response, 422, "validation_failed")
    assert field in problem["detail"]
    assert entry_count(network) == before


def test_enrolment_cannot_set_balances_status_or_ownership(shop, network):
    for field in ("available", "status", "partner_id", "enrolled_by", "tier", "phone_bidx"):
        response = shop.call("POST", "/v1/members", {"phone": "+8613855558888", field: SMUGGLED.get(field, "x")})
        assert_problem(response, 422, "validation_failed")
    assert shop.call("POST", "/v1/members", {"phone": "+8613855558888"}).status_code == 201


def test_a_batch_event_cannot_smuggle_fields_either(shop, member, network):
    before = entry_count(network)
    events = [{"type": "earn", "reference": "x1", "member_id": member, "points": 1, "partner_id": "ptn_other"}]
    assert_problem(shop.call("POST", "/v1/batch", {"events": events}), 422, "validation_failed")
    assert entry_count(network) == before


def test_answers_expose_no_contact_ciphertext_or_foreign_property(shop, partners, member):
    other = partners("Other")
    token = shop.ok("POST", f"/v1/members/{member}/link-tokens", {})["link_token"]
    other.ok("POST", "/v1/members", {"link_token": token, "customer_ref": "OTHER-REF"})
    for partner in (shop, other):
        for path in (f"/v1/members/{member}", f"/v1/members/{member}/history", "/v1/transactions"):
            text = partner.call("GET", path).text
            for secret in ("+8613855557777", "13855557777", "p3@example.com", "v1.k", "_bidx", "_ct\""):
                assert secret not in text, (path, secret)
    assert "OTHER-REF" not in shop.call("GET", f"/v1/members/{member}").text
    assert "C-3" not in other.call("GET", f"/v1/members/{member}").text
