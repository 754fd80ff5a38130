"""An erasure blanks every API enrolment record that holds the member's keyed hashes, not only those that
answered with it: refused ones (``consent_required`` at another partner, ``customer_ref_mismatch``,
``customer_ref_taken``) keep the contact too. Kept requests hash the contact normalised, so the erasure
can compute them; a retry still replays, a record kept as typed (before) too."""

from __future__ import annotations

import json

from sqlalchemy import select

from services.partner_api import routes
from shared.models import IdempotencyRecord
from tests.partner_api.conftest import api, assert_problem, partners, serve, shop  # noqa: F401  (fixtures)

ERASED = {"method": "POST", "path": "/v1/members", "body": {"erased": True}}


def _records(network) -> dict[tuple[str, str], IdempotencyRecord]:
    rows = network.tx(lambda tx: tx.session.execute(select(IdempotencyRecord)).scalars().all(), readonly=True)
    return {(row.partner_id, row.key): row for row in rows}


def test_refused_enrolments_of_the_member_lose_its_hashes_at_erasure(network, shop, partners):
    phone, email = "+8613912345678", "li.lei@example.com"
    member = shop.ok("POST", "/v1/members", {"phone": phone, "email": email, "customer_ref": "C-77"})["member_id"]
    other = partners("Other")
    # typed otherwise than the member's index holds it: the record holds the normalised hash all the same
    assert_problem(other.call("POST", "/v1/members", {"phone": "+86 139 1234 5678", "customer_ref": "X-1"},
                              idempotency_key="o-1"), 409, "consent_required")
    assert_problem(other.call("POST", "/v1/members", {"email": "LI.Lei@Example.com"}, idempotency_key="o-2"),
                   409, "consent_required")
    assert_problem(shop.call("POST", "/v1/members", {"phone": phone, "customer_ref": "C-99"},
                             idempotency_key="s-2"), 409, "customer_ref_mismatch")
    # another person given the member's customer reference: refused, and it names the member's reference
    assert_problem(shop.call("POST", "/v1/members", {"phone": "+8613900000001", "customer_ref": "C-77"},
                             idempotency_key="s-3"), 409, "customer_ref_taken")
    # the same reference at another partner is that partner's customer, not the member: it stays
    kept_other = other.ok("POST", "/v1/members", {"phone": "+8613900000002", "customer_ref": "C-77"},
                          idempotency_key="o-3")["member_id"]

    network.erase_member(member)

    keyring = network.keyring
    hashes = {keyring.blind_index("request.phone", phone), keyring.blind_index("request.email", email)}
    records = _records(network)
    assert not [key for key, r in records.items() if any(h in r.request for h in hashes)]
    for key in ((other.partner_id, "o-1"), (other.partner_id, "o-2"), (shop.partner_id, "s-2"),
                (shop.partner_id, "s-3")):
        assert json.loads(records[key].request) == ERASED, key
        assert json.loads(records[key].response)["code"] in ("consent_required", "customer_ref_mismatch",
                                                              "customer_ref_taken")
    assert json.loads(records[(other.partner_id, "o-3")].response)["member_id"] == kept_other
    assert keyring.blind_index("request.customer_ref", "C-77") in records[(other.partner_id, "o-3")].request
    # a retry of a blanked refusal is refused as a reused key, never enrolled
    assert_problem(other.call("POST", "/v1/members", {"phone": phone, "customer_ref": "X-1"}, idempotency_key="o-1"),
                   422, "idempotency_key_reused")


def test_a_retry_replays_however_the_contact_is_typed(network, shop):
    body = {"phone": "+86 139-1234-5678", "email": "Li.Lei@Example.com", "customer_ref": "C-1"}
    first = shop.call("POST", "/v1/members", body, idempotency_key="k-1")
    assert first.status_code == 201
    kept = json.loads(_records(network)[(shop.partner_id, "k-1")].request)["body"]
    assert kept["phone"] == network.keyring.blind_index("request.phone", "+8613912345678")
    assert kept["email"] == network.keyring.blind_index("request.email", "li.lei@example.com")
    for typed in (body, {**body, "phone": "+8613912345678", "email": "li.lei@example.com"}):
        again = shop.call("POST", "/v1/members", typed, idempotency_key="k-1")
        assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == first.json()
    changed = assert_problem(shop.call("POST", "/v1/members", {**body, "phone": "+8613912345679"},
                                       idempotency_key="k-1"), 422, "idempotency_key_reused")
    assert changed["differs"] == ["phone"]


def test_a_record_kept_as_typed_before_still_replays(network, shop, monkeypatch):
    body = {"phone": "+86 139 1234 5678", "customer_ref": "C-1"}
    with monkeypatch.context() as before:  # how records were kept: the contact hashed as typed
        before.setattr(routes.enrolment, "normalised_contact", lambda field, value, region: value)
        first = shop.call("POST", "/v1/members", body, idempotency_key="k-1")
    kept = json.loads(_records(network)[(shop.partner_id, "k-1")].request)["body"]
    assert kept["phone"] == network.keyring.blind_index("request.phone", body["phone"])
    again = shop.call("POST", "/v1/members", body, idempotency_key="k-1")
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    changed = assert_problem(shop.call("POST", "/v1/members", {**body, "customer_ref": "C-2"}, idempotency_key="k-1"),
                             422, "idempotency_key_reused")
    assert changed["differs"] == ["customer_ref"]


def test_a_contact_that_cannot_be_read_is_kept_hashed_as_typed(network, shop, partners):
    """A link-token enrolment does not read its phone or e-mail: one that is no number is kept as typed."""
    member = shop.ok("POST", "/v1/members", {"phone": "+8613912345678"})["member_id"]
    token = shop.ok("POST", f"/v1/members/{member}/link-tokens")["link_token"]
    other = partners("Other")
    body = {"link_token": token, "phone": "not a phone", "email": "nobody"}
    assert other.ok("POST", "/v1/members", body, idempotency_key="l-1")["member_id"] == member
    kept = json.loads(_records(network)[(other.partner_id, "l-1")].request)["body"]
    assert kept["phone"] == network.keyring.blind_index("request.phone", "not a phone")
    assert kept["email"] == network.keyring.blind_index("request.email", "nobody")
    again = other.call("POST", "/v1/members", body, idempotency_key="l-1")
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
