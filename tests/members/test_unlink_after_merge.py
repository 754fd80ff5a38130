"""An unlink forgets the partner's kept enrolment requests for the member, also those that answered a
duplicate the operators merged into it since (docs/partner-integration.md §4, docs/security.md).

Until 2026-12-07 only the records answering the survivor's id were blanked: a partner that had enrolled
the person as the duplicate kept the keyed hashes of the contact, `customer_ref` and link token it sent,
next to the duplicate's id; a retry of that Idempotency-Key replayed "enrolled" instead of 422; and an
erasure after the unlink could not find them either (it searches the partners linked at the time)."""

from __future__ import annotations

from sqlalchemy import select

from shared.models import IdempotencyRecord
from shared.programme.merge import merge_members
from tests.partner_api.conftest import api, assert_problem, enrol, partners, serve  # noqa: F401  (fixtures)


def _enrolment_records(network, partner_id: str) -> list:
    return network.tx(lambda tx: tx.session.execute(select(IdempotencyRecord).where(
        IdempotencyRecord.partner_id == partner_id,
        IdempotencyRecord.request.endswith('"path":"/v1/members"}'))).scalars().all(), readonly=True)


def test_an_unlink_forgets_the_enrolment_of_a_duplicate_merged_into_the_member(partners, network):
    p, q = partners("P"), partners("Q")
    survivor = enrol(q, phone="+8613900000001")
    enrolment = {"phone": "+8613900000002", "customer_ref": "C-9"}
    duplicate = p.ok("POST", "/v1/members", enrolment, idempotency_key="P-ENROL")["member_id"]
    token = q.ok("POST", f"/v1/members/{survivor}/link-tokens")["link_token"]
    p.ok("POST", "/v1/members", {"link_token": token}, idempotency_key="P-LINK")
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    keyring = network.keyring
    hashes = {keyring.blind_index("request.phone", enrolment["phone"]),
              keyring.blind_index("request.customer_ref", enrolment["customer_ref"])}
    assert any(h in r.request for r in _enrolment_records(network, p.partner_id) for h in hashes)

    p.ok("POST", f"/v1/members/{survivor}/unlink")

    records = _enrolment_records(network, p.partner_id)
    assert len(records) == 2  # the duplicate's enrolment and the link: both blanked, their answers kept
    assert all(r.request.startswith('{"body":{"erased":true}') for r in records), [r.request for r in records]
    assert not [r for r in records if any(h in r.request for h in hashes)]
    assert_problem(p.call("POST", "/v1/members", enrolment, idempotency_key="P-ENROL"), 422, "idempotency_key_reused")
    # q's own enrolment of the survivor is q's: untouched
    assert [r for r in _enrolment_records(network, q.partner_id) if '"erased":true' not in r.request]


def test_an_erasure_after_such_an_unlink_leaves_no_hash_of_the_partner(partners, network):
    p, q = partners("P"), partners("Q")
    survivor = enrol(q, phone="+8613900000011")
    duplicate = enrol(q, phone="+8613900000012")
    token = q.ok("POST", f"/v1/members/{duplicate}/link-tokens")["link_token"]
    p.ok("POST", "/v1/members", {"link_token": token, "customer_ref": "P-CUST-42"})
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    p.ok("POST", f"/v1/members/{survivor}/unlink")
    network.erase_member(survivor)

    keyring = network.keyring
    hashes = {keyring.blind_index("request.customer_ref", "P-CUST-42"), keyring.blind_index("request.link_token", token)}
    records = _enrolment_records(network, p.partner_id)
    assert records and not [r for r in records if any(h in r.request for h in hashes)]
