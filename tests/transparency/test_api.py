"""The proof endpoints called the way a partner would: signed with a standard RFC 9421 library, answers
checked against the network key, proofs checked by the independent verifier; then the SDK."""

from __future__ import annotations

import base64

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.partners.keys import add_key
from shared.sdk import PointsnetClient, ProofError
from shared.signing import public_key_pem
from tests.partner_api.conftest import api, assert_problem, partners, serve, shop  # noqa: F401  (fixtures)
from tests.transparency import rfc9162


def _member(partner) -> str:
    return partner.ok("POST", "/v1/members", {"phone": "+8613900001111"})["member_id"]


def _earn(partner, member: str, reference: str, points: int) -> str:
    return partner.ok("POST", "/v1/earn", {"member_id": member, "reference": reference, "points": points,
                                           "amount": points * 100, "currency": "CNY"})["transaction_id"]


def _note_ok(checkpoint: dict, partner) -> None:
    """The note's signature by the network key served at /v1/network/keys, checked with cryptography."""
    body, _, signatures = checkpoint["note"].partition("\n\n")
    raw = base64.b64decode(signatures.split(" ")[2])
    verified = 0
    for key in partner.network_keys().values():
        try:
            key.verify(raw[4:], (body + "\n").encode())
            verified += 1
        except Exception:
            pass
    assert verified == 1
    assert body.split("\n")[1] == str(checkpoint["tree_size"])
    assert body.split("\n")[2] == checkpoint["root_hash"]


def test_a_partner_proves_its_transaction_is_in_the_signed_tree(network, shop, partners):
    member = _member(shop)
    first = _earn(shop, member, "p-1", 10)
    _earn(shop, member, "p-2", 20)
    network.checkpoint()
    proof = shop.ok("GET", f"/v1/transactions/{first}/proof")  # response signature checked by the helper
    _note_ok(proof["checkpoint"], shop)
    data = base64.b64decode(proof["leaf_data"])
    assert first.encode() in data
    leaf = rfc9162.leaf(data)
    assert base64.b64encode(leaf).decode() == proof["leaf_hash"]
    assert rfc9162.inclusion_ok(proof["leaf_index"], proof["tree_size"], leaf,
                                [base64.b64decode(h) for h in proof["inclusion_path"]],
                                base64.b64decode(proof["checkpoint"]["root_hash"]))

    other = partners("Other Shop")
    assert_problem(other.call("GET", f"/v1/transactions/{first}/proof"), 404, "transaction_not_found")
    assert_problem(shop.call("GET", "/v1/transactions/ent_nope/proof"), 404, "transaction_not_found")
    late = _earn(shop, member, "p-3", 5)
    assert_problem(shop.call("GET", f"/v1/transactions/{late}/proof"), 409, "transaction_not_sealed")


def test_checkpoints_and_their_consistency(network, shop):
    member = _member(shop)
    _earn(shop, member, "c-1", 1)
    network.checkpoint()
    old = httpx.get(shop.base_url + "/v1/checkpoints/latest").json()  # unsigned, like /v1/network/keys
    _note_ok(old, shop)
    for i in range(5):
        _earn(shop, member, f"c-{i + 2}", 1)
    network.checkpoint()
    new = shop.ok("GET", "/v1/checkpoints/latest")  # signed request: signed answer
    _note_ok(new, shop)
    assert (old["tree_size"], new["tree_size"]) == (1, 6)
    proof = shop.ok("GET", "/v1/checkpoints/consistency", params={"from": 1, "to": 6})
    assert rfc9162.consistency_ok(1, 6, base64.b64decode(old["root_hash"]), base64.b64decode(new["root_hash"]),
                                  [base64.b64decode(h) for h in proof["consistency_path"]])
    assert (proof["from"], proof["to"]) == (1, 6)
    assert_problem(shop.call("GET", "/v1/checkpoints/consistency", params={"from": 2, "to": 6}), 422,
                   "invalid_tree_sizes")
    assert_problem(shop.call("GET", "/v1/checkpoints/consistency", params={"from": 6, "to": 1}), 422,
                   "invalid_tree_sizes")


def test_no_checkpoint_yet_is_a_problem(network, shop):
    assert_problem(shop.call("GET", "/v1/checkpoints/latest"), 404, "checkpoint_not_found")


@pytest.fixture
def client(network, api):  # noqa: F811
    from tests.factories import make_partner

    partner = make_partner(network)
    key = Ed25519PrivateKey.generate()
    key_id = network.tx(lambda tx: add_key(tx, partner, public_key_pem(key.public_key()).decode()))["key_id"]
    sdk = PointsnetClient(api, key_id, key)
    yield sdk
    sdk.close()


def test_the_sdk_verifies_both_proofs(network, client):
    member = client.enrol(phone="+8613900002222")["member_id"]
    earned = client.earn(member, "s-1", points=7, amount=700, currency="CNY")["transaction_id"]
    network.checkpoint()
    old = client.latest_checkpoint()
    proof = client.verified_inclusion(earned)
    assert proof["leaf_index"] == 0
    client.earn(member, "s-2", points=8, amount=800, currency="CNY")
    network.checkpoint()
    new = client.latest_checkpoint()
    client.verified_consistency(old, new)

    forged = dict(new, root_hash=base64.b64encode(b"\0" * 32).decode())
    with pytest.raises(ProofError):
        client.verify_checkpoint(forged)
    forged_note = dict(new, note=new["note"].replace(f"\n{new['tree_size']}\n", "\n99\n"))
    with pytest.raises(ProofError):
        client.verify_checkpoint(forged_note)
    with pytest.raises(ProofError):
        client.verified_consistency(new, dict(old, tree_size=new["tree_size"]))


def test_a_client_given_the_ledgers_origin_refuses_a_checkpoint_of_another_log(network, client):
    """A note the network's key signed for another log (a staging network sharing the key) verifies with the
    key; a client told the ledger's origin refuses it (docs/verifiable-ledger.md), as `pointsnet verify`
    names it (checkpoint_origin). Until 2026-12-07 the SDK took any origin."""
    from datetime import datetime, timezone

    from shared.transparency.checkpoints import origin
    from shared.transparency.note import note_body, sign_note

    member = client.enrol(phone="+8613900005555")["member_id"]
    client.earn(member, "o-1", points=5, amount=500, currency="CNY")
    network.checkpoint()
    ours = client.latest_checkpoint()
    staging = "staging.example.com/ledger"
    root = base64.b64decode(ours["root_hash"])
    theirs = dict(ours, note=sign_note(note_body(staging, ours["tree_size"], root, datetime.now(timezone.utc)),
                                       staging, network.signing_key))
    assert client.verify_checkpoint(theirs).tree_size == ours["tree_size"]  # no origin given: any the key signed
    client.ledger_origin = origin(network.settings)
    assert client.verify_checkpoint(ours).tree_size == ours["tree_size"]
    with pytest.raises(ProofError, match="staging.example.com/ledger"):
        client.verify_checkpoint(theirs)


def test_the_guides_forty_lines_check_a_proof_and_refuse_another_log(network, client):
    """The guide's verifier without Pointsnet code (docs/verifiable-ledger.md), run as written."""
    import re
    from pathlib import Path

    from shared.transparency.checkpoints import origin

    guide = (Path(__file__).parents[2] / "docs" / "verifiable-ledger.md").read_text()
    code = re.search(r"so do 40 lines of Python:\n\n```python\n(.*?)```", guide, re.S).group(1)
    definitions, _, usage = code.partition("\nsize, root = ")
    member = client.enrol(phone="+8613900006666")["member_id"]
    earned = client.earn(member, "g-1", points=5, amount=500, currency="CNY")["transaction_id"]
    network.checkpoint()
    proof = client.verified_inclusion(earned)
    here = {"proof": proof, "network_key": network.signing_key.public_key()}
    exec(definitions.replace('"points.example.com/ledger"', repr(origin(network.settings))), here)
    exec("size, root = " + usage, here)  # the guide's own lines: raise if the proof does not hold
    assert here["size"] == proof["tree_size"]
    with pytest.raises(AssertionError):
        here["check_note"](proof["checkpoint"]["note"], here["network_key"], origin="staging.example.com/ledger")


def test_the_sdk_takes_the_empty_tree_as_the_beginning_of_every_tree(network, client):
    """A new network signs checkpoints of size 0; a partner that kept one checks the next against it. The
    empty tree is a prefix of every tree: until 2026-12-07 the SDK asked the network for a proof from size 0,
    which it refuses (422 invalid_tree_sizes), so the check failed."""
    network.checkpoint()
    old = client.latest_checkpoint()
    assert old["tree_size"] == 0
    member = client.enrol(phone="+8613900004444")["member_id"]
    client.earn(member, "e-1", points=5, amount=500, currency="CNY")
    network.checkpoint()
    new = client.latest_checkpoint()
    assert client.verified_consistency(old, new) == {"from": 0, "to": new["tree_size"], "consistency_path": []}
    with pytest.raises(ProofError):  # a forged size-0 checkpoint is still refused, by its signature
        client.verified_consistency(dict(old, root_hash=new["root_hash"]), new)


def test_the_sdk_refuses_another_transactions_proof_whose_reference_spells_the_asked_id(network, client):
    """A network that answers the proof of another entry is caught even when that entry's reference (free
    text) contains the asked id's field: the id is the E record's first field, read by the grammar."""
    member = client.enrol(phone="+8613900003333")["member_id"]
    victim = client.earn(member, "real", points=5, amount=500, currency="CNY")["transaction_id"]
    other = client.earn(member, f"x {len(victim)}:{victim},", points=6, amount=600,
                        currency="CNY")["transaction_id"]
    network.checkpoint()
    assert client.verified_inclusion(victim)["leaf_index"] == 0
    honest_call = client.call

    def lying_call(method, path, *args, **kwargs):
        if path == f"/v1/transactions/{victim}/proof":
            path = f"/v1/transactions/{other}/proof"
        return honest_call(method, path, *args, **kwargs)

    client.call = lying_call
    with pytest.raises(ProofError, match="another transaction"):
        client.verified_inclusion(victim)


def test_a_proof_the_damaged_tree_store_cannot_build_is_503_proof_unavailable(network, shop):
    """A subtree row missing from ``ledger_nodes`` (damage: ``pointsnet verify`` names it): the proofs
    that need it answer 503 proof_unavailable, not a 500 that tells the partner to retry; the dashboard's
    transaction detail shows the proof as a mismatch."""
    from sqlalchemy import text

    from shared.transparency.inclusion import inclusion_status

    member = _member(shop)
    entries = [_earn(shop, member, f"d-{i}", 10 + i) for i in range(3)]
    network.checkpoint()
    old = shop.ok("GET", "/v1/checkpoints/latest")["tree_size"]
    entries += [_earn(shop, member, f"d-{i}", 10 + i) for i in range(3, 5)]
    network.checkpoint()
    new = shop.ok("GET", "/v1/checkpoints/latest")["tree_size"]
    network.tx(lambda tx: tx.session.execute(text("DELETE FROM ledger_nodes WHERE level = 1 AND node_index = 0")))
    problem = assert_problem(shop.call("GET", f"/v1/transactions/{entries[3]}/proof"), 503, "proof_unavailable")
    assert "retry" not in problem["detail"].lower()
    assert_problem(shop.call("GET", f"/v1/checkpoints/consistency?from={old}&to={new}"), 503, "proof_unavailable")
    assert network.tx(lambda tx: inclusion_status(tx, entries[3]), readonly=True)["state"] == "mismatch"
