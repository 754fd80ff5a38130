"""Exactly once over HTTP: Idempotency-Key replays, conflicts, what is stored and what is not."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from shared.keys import activate_pii_key, add_pii_key, retire_pii_key
from shared.models import Member
from tests.cli.inprocess import pointsnet
from tests.conftest import START
from tests.partner_api.conftest import assert_problem, enrol, entry_count, rebuild


@pytest.fixture
def member(shop) -> str:
    member_id = enrol(shop, phone="+8613812340000")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 100})
    return member_id


def test_replay_of_the_identical_signed_request_is_refused_and_posts_nothing(shop, member, network):
    request = shop.build("POST", "/v1/burn", {"member_id": member, "reference": "b-1", "points": 10})
    assert shop.send(request).status_code == 200
    before = entry_count(network)
    assert_problem(shop.send(rebuild(request)), 401, "nonce_reused")
    assert entry_count(network) == before


def test_a_retry_with_a_fresh_signature_returns_the_stored_answer(shop, member, network):
    body = {"member_id": member, "reference": "b-1", "points": 10}
    first = shop.call("POST", "/v1/burn", body, idempotency_key="K-1")
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    before = entry_count(network)

    retry = shop.call("POST", "/v1/burn", body, idempotency_key="K-1")  # fresh nonce, fresh created
    assert retry.status_code == first.status_code
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.json()["balance"] == {"available": 90, "held": 0}
    assert retry.headers["signature"] != first.headers["signature"]  # fresh, bound to the retry
    shop.verify(retry)
    assert entry_count(network) == before
    assert shop.ok("GET", f"/v1/members/{member}")["balance"]["available"] == 90


def test_the_same_key_with_a_different_body_is_refused(shop, member, network):
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b-1", "points": 10}, idempotency_key="K-2")
    before = entry_count(network)
    response = shop.call("POST", "/v1/burn", {"member_id": member, "reference": "b-1", "points": 11},
                         idempotency_key="K-2")
    assert assert_problem(response, 422, "idempotency_key_reused")["differs"] == ["points"]
    other_route = shop.call("POST", "/v1/holds", {"member_id": member, "reference": "b-1", "points": 10},
                            idempotency_key="K-2")
    assert assert_problem(other_route, 422, "idempotency_key_reused")["differs"] == ["path"]
    assert entry_count(network) == before


def test_idempotency_key_reused_names_the_fields_that_differ(shop, member):
    """docs 3: "(naming what differs)". Found by review: the problem named only "body", never the field.
    Fields of nested objects and lists are named by their path in the body."""
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "amount": 500,
                                 "items": [{"sku": "a", "amount": 200}, {"sku": "b", "amount": 300}]},
            idempotency_key="K-3")
    response = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "e-2", "amount": 500, "currency": "CNY",
                                              "items": [{"sku": "a", "amount": 200}, {"sku": "b", "amount": 301}]},
                         idempotency_key="K-3")
    problem = assert_problem(response, 422, "idempotency_key_reused")
    assert problem["differs"] == ["currency", "items[1].amount", "reference"], problem
    assert "items[1].amount" in problem["detail"]
    batch = {"events": [{"type": "burn", "reference": f"bb-{i}", "member_id": member, "points": 1} for i in range(2)]}
    shop.ok("POST", "/v1/batch", batch, idempotency_key="K-4")
    batch["events"][1]["points"] = 2
    problem = assert_problem(shop.call("POST", "/v1/batch", batch, idempotency_key="K-4"), 422,
                             "idempotency_key_reused")
    assert problem["differs"] == ["events[1].points"], problem


def test_a_post_without_idempotency_key_is_refused(shop, member, network):
    before = entry_count(network)
    # signed over its Idempotency-Key, as every POST is, and sent without it
    for path, body in (("/v1/burn", {"member_id": member, "reference": "b-1", "points": 10}),
                       (f"/v1/members/{member}/link-tokens", None)):
        request = shop.build("POST", path, body, idempotency_key="K-missing")
        response = shop.send(rebuild(request, drop_headers=("idempotency-key",)))
        assert_problem(response, 400, "idempotency_key_missing")
    # a signature that does not cover it is refused first (the signature is checked before the key)
    components = ("@method", "@authority", "@path", "@query", "content-digest")
    response = shop.call("POST", "/v1/burn", {"member_id": member, "reference": "b-1", "points": 10},
                         idempotency_key=None, components=components)
    assert assert_problem(response, 401, "signature_component_missing")["missing"] == ["idempotency-key"]
    assert entry_count(network) == before


def test_a_business_refusal_is_stored_and_replayed(shop, member, network):
    body = {"member_id": member, "reference": "big", "points": 500}
    refused = shop.call("POST", "/v1/burn", body, idempotency_key="K-3")
    problem = assert_problem(refused, 409, "insufficient_points")
    # the member now has enough, but the stored outcome of K-3 stands
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "top-up", "points": 1000})
    before = entry_count(network)
    again = shop.call("POST", "/v1/burn", body, idempotency_key="K-3")
    assert again.status_code == 409 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == problem
    assert again.headers["content-type"].startswith("application/problem+json")
    assert entry_count(network) == before
    # a new key is a new attempt
    assert shop.call("POST", "/v1/burn", body, idempotency_key="K-4").status_code == 200


def test_a_validation_failure_is_not_stored(shop, member, network):
    bad = shop.call("POST", "/v1/burn", {"member_id": member, "reference": "b-2", "points": 0}, idempotency_key="K-5")
    assert_problem(bad, 422, "validation_failed")
    unknown_field = shop.call("POST", "/v1/burn", {"member_id": member, "reference": "b-2", "points": 5,
                                                   "partner_id": "someone-else"}, idempotency_key="K-5")
    assert_problem(unknown_field, 422, "validation_failed")
    fixed = shop.call("POST", "/v1/burn", {"member_id": member, "reference": "b-2", "points": 5},
                      idempotency_key="K-5")
    assert fixed.status_code == 200, fixed.text
    assert "idempotent-replayed" not in fixed.headers


def test_a_ledger_validation_failure_is_not_stored(shop, member):
    body = {"member_id": member, "reference": "e-old", "points": 5, "occurred_at": "2020-01-01T00:00:00Z"}
    assert_problem(shop.call("POST", "/v1/earn", body, idempotency_key="K-6"), 422, "occurred_at_out_of_range")
    del body["occurred_at"]
    fixed = shop.call("POST", "/v1/earn", body, idempotency_key="K-6")
    assert fixed.status_code == 200, fixed.text


def test_an_authentication_failure_is_not_stored(shop, member):
    body = {"member_id": member, "reference": "b-3", "points": 5}
    signed = shop.build("POST", "/v1/burn", body, idempotency_key="K-7")
    tampered = rebuild(signed, content=signed.content.replace(b'"points": 5', b'"points": 6'))
    assert_problem(shop.send(tampered), 401, "digest_mismatch")
    first = shop.call("POST", "/v1/burn", {**body, "points": 6}, idempotency_key="K-7")
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers


def test_a_new_key_with_a_used_reference(shop, member, network):
    body = {"member_id": member, "reference": "b-4", "points": 7}
    first = shop.ok("POST", "/v1/burn", body)
    before = entry_count(network)
    same = shop.ok("POST", "/v1/burn", body)  # new Idempotency-Key, same content: the original result
    assert same["transaction_id"] == first["transaction_id"]
    assert same["points"] == 7
    different = shop.call("POST", "/v1/burn", {**body, "points": 8})
    assert_problem(different, 409, "reference_conflict")
    assert entry_count(network) == before


def test_keys_are_per_partner(partners, network):
    """Two partners may use the same Idempotency-Key; neither sees the other's stored answer."""
    a, b = partners("A"), partners("B")
    ma, mb = enrol(a), enrol(b)
    ra = a.ok("POST", "/v1/earn", {"member_id": ma, "reference": "x", "points": 3}, idempotency_key="SAME")
    rb = b.call("POST", "/v1/earn", {"member_id": mb, "reference": "x", "points": 4}, idempotency_key="SAME")
    assert rb.status_code == 200 and "idempotent-replayed" not in rb.headers
    assert rb.json()["member_id"] == mb and rb.json()["transaction_id"] != ra["transaction_id"]


def test_concurrent_retries_post_once(shop, member, network):
    """Twins with the same key: each answer is the stored one or 409 request_in_progress; one posting."""
    events = [{"type": "earn", "reference": f"c-{i}", "member_id": member, "points": 1} for i in range(400)]
    key = str(uuid.uuid4())
    requests = [shop.build("POST", "/v1/batch", {"events": events}, idempotency_key=key) for _ in range(4)]
    answers: list = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def go(i):
        barrier.wait()
        answers[i] = shop.send(requests[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bodies = []
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409, "request_in_progress")
        else:
            assert answer.status_code == 200, answer.text
            bodies.append(answer.json())
    assert bodies and all(body == bodies[0] for body in bodies)
    assert bodies[0]["accepted"] == 400
    assert entry_count(network) == 1 + 400
    final = shop.call("POST", "/v1/batch", {"events": events}, idempotency_key=key)
    assert final.status_code == 200 and final.headers["idempotent-replayed"] == "true"
    assert final.json() == bodies[0]


def test_a_link_token_retry_returns_the_same_token(shop, member, partners):
    first = shop.call("POST", f"/v1/members/{member}/link-tokens", idempotency_key="LT-1")
    assert first.status_code == 201, first.text
    again = shop.call("POST", f"/v1/members/{member}/link-tokens", idempotency_key="LT-1")
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = partners("Other")
    linked = other.ok("POST", "/v1/members", {"link_token": first.json()["link_token"]})
    assert linked["member_id"] == member


def test_no_usable_link_token_is_kept_in_the_database(shop, member, partners, network):
    """security.md: link tokens are stored as hashes only. The answer kept for a retry holds the token
    sealed with the members' data key; an enrolment that presented a token and was refused (a stored
    business refusal) keeps only its keyed hash."""
    token = shop.ok("POST", f"/v1/members/{member}/link-tokens", idempotency_key="LT-2")["link_token"]
    other = partners("Other")
    other.ok("POST", "/v1/members", {"phone": "+8613900000001", "customer_ref": "C-1"})
    refused = other.call("POST", "/v1/members", {"link_token": token, "customer_ref": "C-1"}, idempotency_key="EN-1")
    assert refused.status_code == 409, refused.text
    kept = network.tx(lambda tx: tx.session.execute(text(
        "SELECT request || response FROM idempotency_records")).scalars().all(), readonly=True)
    assert not any(token in record for record in kept)
    assert other.ok("POST", "/v1/members", {"link_token": token})["member_id"] == member  # still the member's


def _rotate(network) -> tuple[str, str]:
    """Both phases of a personal-data key rotation (docs/security.md): a new key added, then made active."""
    old = network.keyring.active.id
    new = add_pii_key(network.settings)
    activate_pii_key(network.settings, new)
    assert network.keyring.active.id == new
    return old, new


def _retire(network, database_url: str, key_id: str, at):
    """`pointsnet keys retire KEY_ID` on this network's key file and database, its clock at ``at``."""
    return pointsnet("keys", "retire", key_id, env={
        "POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
        "POINTSNET_CLOCK": at.isoformat()})


def _members(network) -> int:
    return network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(Member)).scalar_one(),
                      readonly=True)


def test_an_enrolment_retried_after_a_key_rotation_is_replayed(shop, network):
    """The enrolment kept for an Idempotency-Key holds its contact fields hashed under the personal-data
    key active then. A retry of the same body after a rotation (and its re-encryption) is compared under
    that key, as long as the keyring holds it, and answers the first answer byte for byte; another body
    under the same key is still refused, naming what differs; a new enrolment is kept under the new key."""
    body = {"phone": "+8613912345678", "email": "li.lei@example.com", "name": "Li Lei", "customer_ref": "C-9"}
    first = shop.call("POST", "/v1/members", body, idempotency_key="EN-ROT")
    assert first.status_code == 201, first.text
    old, new = _rotate(network)
    network.rotate_personal_data()
    members = _members(network)

    retry = shop.call("POST", "/v1/members", body, idempotency_key="EN-ROT")
    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    changed = shop.call("POST", "/v1/members", {**body, "phone": "+8613912345679"}, idempotency_key="EN-ROT")
    assert assert_problem(changed, 422, "idempotency_key_reused")["differs"] == ["phone"]
    assert _members(network) == members

    shop.ok("POST", "/v1/members", {"phone": "+8613912340077"}, idempotency_key="EN-NEW")
    kept = network.tx(lambda tx: dict(tx.session.execute(text(
        "SELECT key, request FROM idempotency_records WHERE key IN ('EN-ROT', 'EN-NEW')")).all()), readonly=True)
    assert f'"{old}:' in kept["EN-ROT"] and f'"{new}:' in kept["EN-NEW"]
    assert "+86139" not in kept["EN-ROT"] + kept["EN-NEW"] and "Li Lei" not in kept["EN-ROT"]


def test_an_enrolment_kept_under_a_key_no_longer_in_the_keyring_is_refused_in_words(shop, network):
    """Should the key an enrolment was kept under leave the keyring anyway (by hand, past `keys retire`'s
    check), a retry cannot be compared: 422 `idempotency_key_reused` saying so, not an error of the
    server and not a second enrolment."""
    body = {"phone": "+8613912345680"}
    assert shop.call("POST", "/v1/members", body, idempotency_key="EN-GONE").status_code == 201
    old, _ = _rotate(network)
    network.rotate_personal_data()
    retire_pii_key(network.settings, old)
    members = _members(network)
    gone = shop.call("POST", "/v1/members", body, idempotency_key="EN-GONE")
    problem = assert_problem(gone, 422, "idempotency_key_reused")
    assert "since retired" in problem["detail"] and problem["differs"] == []
    assert _members(network) == members


def test_a_link_token_retried_after_a_key_rotation_is_replayed_and_its_key_kept(shop, network, database_url):
    """The answer kept for a link token holds the token sealed under the key active then. After a rotation
    and its re-encryption a retry answers the first answer byte for byte; `pointsnet keys retire OLD`
    refuses (one line, naming when it can) while that answer is within the retention, and retires the
    key after it. A retry after that answers 409 `invalid_link_token`, never a server error."""
    member = shop.ok("POST", "/v1/members", {"phone": "+8613912345679"})["member_id"]
    first = shop.call("POST", f"/v1/members/{member}/link-tokens", idempotency_key="LT-ROT")
    assert first.status_code == 201, first.text
    old, new = _rotate(network)
    network.rotate_personal_data()

    retry = shop.call("POST", f"/v1/members/{member}/link-tokens", idempotency_key="LT-ROT")
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content

    kept_until = START + timedelta(days=network.settings.idempotency_retention_days)
    refused = _retire(network, database_url, old, kept_until)
    assert refused.returncode != 0 and refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "Traceback" not in refused.stderr and f"still need {old}" in refused.stderr
    assert f"after {kept_until.isoformat(timespec='seconds')}" in refused.stderr
    assert set(network.keyring.keys) == {old, new}
    again = shop.call("POST", f"/v1/members/{member}/link-tokens", idempotency_key="LT-ROT")
    assert again.status_code == 201 and again.content == first.content

    retired = _retire(network, database_url, old, kept_until + timedelta(seconds=1))
    assert retired.returncode == 0, retired.stderr
    assert set(network.keyring.keys) == {new}
    late = shop.call("POST", f"/v1/members/{member}/link-tokens", idempotency_key="LT-ROT")
    assert assert_problem(late, 409, "invalid_link_token")["detail"].startswith("the link token kept")


def test_keys_are_kept_at_least_seven_days(shop, member, network, clock):
    body = {"member_id": member, "reference": "b-7d", "points": 10}
    first = shop.ok("POST", "/v1/burn", body, idempotency_key="K-7D")
    clock.advance(days=6, hours=23)
    network.prune_idempotency()
    again = shop.call("POST", "/v1/burn", body, idempotency_key="K-7D")
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first
    changed = shop.call("POST", "/v1/burn", {**body, "points": 11}, idempotency_key="K-7D")
    assert_problem(changed, 422, "idempotency_key_reused")


def test_quote_posts_nothing_and_agrees_with_earn(shop, member, network):
    body = {"member_id": member, "reference": "q-1", "amount": 12_345, "currency": "CNY"}
    before = entry_count(network)
    quote = shop.ok("POST", "/v1/earn/quote", body)
    assert entry_count(network) == before
    earned = shop.ok("POST", "/v1/earn", body)
    assert earned["points"] == quote["points"] > 0
    assert quote["breakdown"] and sum(line["points"] for line in quote["breakdown"]) == quote["points"]
