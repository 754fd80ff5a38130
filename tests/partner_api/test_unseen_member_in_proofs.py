"""A proof and a refusal never name a member the partner may not see (docs/partner-integration.md §4).

The inclusion proof of an entry naming a member not linked to the partner (its own customer that withdrew
its consent, the survivor of a merge that is another partner's member, a referrer linked elsewhere) gives
the leaf's hash and its path, not `leaf_data`: until 2026-12-07 the leaf's canonical encoding named that
member (its id, its `member:` account). A reversal refused because such an entry's member was erased names no
member either: it named the survivor, another partner's member, and told that it was erased."""

from __future__ import annotations

import base64
import json

from shared.members.erasure import erase_member
from shared.programme.merge import merge_members
from shared.rules.store import set_rules
from shared.sdk import PointsnetClient, ProofError
from tests.partner_api.conftest import assert_problem, enrol
from tests.transparency import rfc9162


def _unlinked_and_merged(network, a, b) -> tuple[str, str]:
    """a's member m earned (e1), was held (h1, captured) and unlinked; the operators merged it into b's s."""
    m = enrol(a)
    a.ok("POST", "/v1/earn", {"member_id": m, "reference": "e1", "points": 100})
    hold = a.ok("POST", "/v1/holds", {"member_id": m, "reference": "h1", "points": 10})["hold_id"]
    a.ok("POST", f"/v1/holds/{hold}/capture", {"reference": "c1"})
    a.ok("POST", f"/v1/members/{m}/unlink")
    s = enrol(b)
    network.tx(lambda tx: merge_members(tx, s, m))
    return m, s


def _withheld(partner, transaction_id: str, *hidden: str) -> dict:
    """The proof names none of ``hidden`` and still proves the leaf's hash is in the signed tree."""
    proof = partner.ok("GET", f"/v1/transactions/{transaction_id}/proof")
    for member in hidden:
        assert member not in json.dumps(proof), proof
    assert proof["leaf_data"] is None, base64.b64decode(proof["leaf_data"])
    assert rfc9162.inclusion_ok(proof["leaf_index"], proof["tree_size"], base64.b64decode(proof["leaf_hash"]),
                                [base64.b64decode(h) for h in proof["inclusion_path"]],
                                base64.b64decode(proof["checkpoint"]["root_hash"]))
    return proof


def test_the_proof_of_a_reversal_after_an_unlink_and_a_merge_names_not_the_other_partners_member(
        partners, network):
    a, b = partners("A"), partners("B")
    m, s = _unlinked_and_merged(network, a, b)
    reversal = a.ok("POST", "/v1/reversals", {"reference": "r1", "original_reference": "e1", "points": 5})
    returned = a.ok("POST", "/v1/reversals", {"reference": "r2", "original_reference": "c1", "points": 2})
    network.checkpoint()
    for entry in (reversal, returned):
        _withheld(a, entry["transaction_id"], s, m)
    # its own entries of the member from before the unlink: the member is not its to see now, as in the list
    listed = {t["reference"]: t["transaction_id"] for t in a.ok("GET", "/v1/transactions")["transactions"]}
    for reference in ("e1", "h1", "c1"):
        _withheld(a, listed[reference], s, m)


def test_the_proof_of_an_entry_of_a_linked_member_keeps_its_leaf_data(partners, network):
    """A member linked to the partner (also one merged into a member linked to it) is named as ever."""
    a = partners("A")
    mine, duplicate = enrol(a), enrol(a)
    earned = a.ok("POST", "/v1/earn", {"member_id": duplicate, "reference": "e1", "points": 10})["transaction_id"]
    network.tx(lambda tx: merge_members(tx, mine, duplicate))
    network.checkpoint()
    proof = a.ok("GET", f"/v1/transactions/{earned}/proof")
    data = base64.b64decode(proof["leaf_data"])
    assert data.startswith(b"pointsnet-leaf-v1\nE %d:%s," % (len(earned), earned.encode()))
    assert base64.b64encode(rfc9162.leaf(data)).decode() == proof["leaf_hash"]


def test_the_proof_of_a_referral_bonus_names_not_a_referrer_linked_elsewhere(partners, network):
    books, coffee = partners("BookMart"), partners("CoffeeCo")
    referrer = enrol(coffee)
    network.tx(lambda tx: set_rules(tx, books.partner_id, "referral: {bonus_points: 50, funded_by: partner}\n"))
    friend = enrol(books, referrer_member_id=referrer)
    bonus = books.ok("POST", "/v1/earn", {"member_id": friend, "reference": "e1", "points": 10})["referral_bonus"]
    network.checkpoint()
    _withheld(books, bonus["transaction_id"], referrer)


def test_the_sdk_checks_a_withheld_leaf_by_its_hash(partners, network):
    a, b = partners("A"), partners("B")
    _unlinked_and_merged(network, a, b)
    reversal = a.ok("POST", "/v1/reversals", {"reference": "r1", "original_reference": "e1", "points": 5})
    network.checkpoint()
    client = PointsnetClient(a.base_url, a.key_id, a.keys[a.key_id])
    try:
        proof = client.verified_inclusion(reversal["transaction_id"])
        assert proof["leaf_data"] is None
        honest_call = client.call

        def lying_call(method, path, *args, **kwargs):
            answer = honest_call(method, path, *args, **kwargs)
            if path.endswith("/proof"):
                answer.body["leaf_hash"] = base64.b64encode(b"\0" * 32).decode()
            return answer

        client.call = lying_call
        try:
            client.verified_inclusion(reversal["transaction_id"])
        except ProofError as refused:
            assert "root" in str(refused)
        else:
            raise AssertionError("a leaf hash not in the tree was believed")
    finally:
        client.close()


def test_a_reversal_refused_for_an_erased_survivor_names_no_member(partners, network):
    a, b = partners("A"), partners("B")
    m, s = _unlinked_and_merged(network, a, b)
    network.tx(lambda tx: erase_member(tx, s, keyring=network.keyring))
    problem = assert_problem(a.call("POST", "/v1/reversals", {"reference": "r1", "original_reference": "e1",
                                                              "points": 5}), 409, "member_erased")
    assert s not in json.dumps(problem) and m not in json.dumps(problem), problem
    answer = a.ok("POST", "/v1/batch", {"events": [
        {"type": "reversal", "reference": "r2", "original_reference": "e1", "points": 5},
        {"type": "reversal", "reference": "r3", "original_reference": "c1", "points": 1}]})
    assert answer["accepted"] == 0, answer
    assert {r["problem"]["code"] for r in answer["results"]} == {"member_erased"}, answer
    assert s not in json.dumps(answer) and m not in json.dumps(answer), answer
