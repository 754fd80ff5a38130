"""The stored subtrees that answer partners' proofs are checked node by node by ``pointsnet verify``.

Each test edits or deletes ``ledger_nodes`` rows the way an insider with SQL access could, and expects
verify to name exactly the subtree touched (``stored_tree_mismatch``), on SQLite (where verify always
rebuilds the tree leaf by leaf) and on PostgreSQL (where the set-based proof fails first, and the
rebuild then names what it found).
"""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select, text

from shared.ledger.verify import verify
from shared.transparency import audit as audit_module, merkle
from shared.transparency.audit import audit
from shared.transparency.checkpoints import inclusion_proof
from tests.factories import make_member, make_partner
from tests.transparency.conftest import TERMS


def run_verify(network, workers: int = 2):
    key = network.signing_key.public_key()
    return network.tx(lambda tx: verify(tx, public_key=key, workers=workers), readonly=True)


def tamper(network, statement: str, **params) -> None:
    network.tx(lambda tx: tx.session.execute(text(statement), params))


def found(report, check: str = "stored_tree_mismatch") -> set[str]:
    return {o.subject for o in report.offences if o.check == check}


def _proof_verifies(network, partner: str, entry_id: str) -> bool:
    proof = network.tx(lambda tx: inclusion_proof(tx, partner, entry_id), readonly=True)
    return merkle.verify_inclusion(proof["leaf_index"], proof["tree_size"],
                                   merkle.leaf_hash(base64.b64decode(proof["leaf_data"])),
                                   [base64.b64decode(p) for p in proof["inclusion_path"]],
                                   base64.b64decode(proof["checkpoint"]["root_hash"]))


@pytest.fixture
def grown(network, clock):
    """21 leaves: complete subtrees up to level 4 (16 leaves), a right edge of 4 + 1, one checkpoint."""
    partner = make_partner(network, "CoffeeCo", **TERMS)
    member = make_member(network, partner)
    entries = []
    for i in range(21):
        entries.append(network.earn(partner, member, f"g-{i}", points=10 + i)["entry_id"])
        clock.advance(seconds=1)
    network.checkpoint()
    assert run_verify(network).ok
    return partner, entries


def test_a_tampered_inner_stored_subtree_is_named(network, sealed, clock):
    """The reviewer's case: 4 leaves, whose root is read from the single level-2 node; the edited
    level-1 node breaks partners' proofs and must be named even though the stored root is intact."""
    fourth = network.earn(sealed.coffee, sealed.member, "coffee-2", points=5)["entry_id"]
    clock.advance(minutes=1)
    network.checkpoint()
    assert run_verify(network).ok
    assert _proof_verifies(network, sealed.coffee, fourth)
    tamper(network, "UPDATE ledger_nodes SET hash = :h WHERE level = 1 AND node_index = 0", h=b"\x07" * 32)
    assert not _proof_verifies(network, sealed.coffee, fourth)
    for workers in (1, 2):
        report = run_verify(network, workers)
        assert found(report) == {"level 1 node 0"}, report.offences
        assert {o.check for o in report.offences} == {"stored_tree_mismatch"}


@pytest.mark.parametrize("level,index", [(1, 3), (2, 2), (3, 0), (4, 0), (2, 4), (1, 9)])
def test_any_tampered_stored_subtree_is_named_alone(network, grown, level, index):
    tamper(network, "UPDATE ledger_nodes SET hash = :h WHERE level = :l AND node_index = :i",
           h=b"\x07" * 32, l=level, i=index)
    report = run_verify(network)
    assert found(report) == {f"level {level} node {index}"}, report.offences
    assert {o.check for o in report.offences} == {"stored_tree_mismatch"}
    [offence] = report.offences
    first = index << level
    assert f"leaves {first}-{first + (1 << level) - 1}" in offence.detail


@pytest.mark.parametrize("level,index", [(1, 0), (2, 1), (4, 0), (1, 9)])
def test_a_deleted_stored_subtree_is_named(network, grown, level, index):
    """A missing row makes building a proof through it fail (LookupError): verify names the row."""
    partner, entries = grown
    tamper(network, "DELETE FROM ledger_nodes WHERE level = :l AND node_index = :i", l=level, i=index)
    for workers in (1, 2):
        report = run_verify(network, workers)
        assert found(report) == {f"level {level} node {index}"}, report.offences
        assert {o.check for o in report.offences} == {"stored_tree_mismatch"}
        assert "no row" in report.offences[0].detail


def test_each_batch_of_the_rebuild_checks_its_own_nodes(network, grown, monkeypatch):
    """With batches of 4 leaves, a node is completed in the batch after its left half: every node is
    still compared, the ledger still verifies, and no read of the stored nodes returns more rows than
    a batch completes (memory stays flat however large the tree)."""
    monkeypatch.setattr(audit_module, "BATCH", 4)
    key = network.signing_key.public_key()
    reads = []
    stored_nodes = audit_module._stored_nodes

    def read(tx, completed):
        rows = stored_nodes(tx, completed)
        reads.append((len(completed), len(rows)))
        return rows

    monkeypatch.setattr(audit_module, "_stored_nodes", read)
    assert network.tx(lambda tx: audit(tx, key, proven=lambda checkpoints: False), readonly=True) == []
    assert sum(n for n, _ in reads) == 21 - 3  # every complete subtree of 21 leaves (21 less its 3 edges)
    assert all(rows == n < 2 * 4 for n, rows in reads), reads  # a batch completes fewer than 2 nodes a leaf
    tamper(network, "UPDATE ledger_nodes SET hash = :h WHERE level = 2 AND node_index = 3", h=b"\x07" * 32)
    tamper(network, "DELETE FROM ledger_nodes WHERE level = 1 AND node_index = 8")
    findings = network.tx(lambda tx: audit(tx, key, proven=lambda checkpoints: False), readonly=True)
    assert {(check, subject) for check, subject, _ in findings} == {
        ("stored_tree_mismatch", "level 2 node 3"), ("stored_tree_mismatch", "level 1 node 8")}


def test_an_edited_stored_leaf_hash_names_the_leaf_and_the_subtrees_above_it(network, grown):
    """The stored subtrees were built from the original leaf: each one above the edited leaf hash
    disagrees with the stored leaves, and is named; the leaf itself no longer matches its entry."""
    partner, entries = grown
    tamper(network, "UPDATE ledger_leaves SET leaf_hash = :h WHERE leaf_index = 5", h=b"\x07" * 32)
    report = run_verify(network)
    assert found(report, "leaf_hash_mismatch") == {f"entry {entries[5]}"}
    assert found(report) == {"level 1 node 2", "level 2 node 1", "level 3 node 0", "level 4 node 0"}


def test_a_failed_proof_the_rebuild_cannot_explain_is_reported(network, grown):
    """If the set-based proof fails in a part the rebuild checks exactly (a stored subtree, a
    checkpoint's root) and the rebuild names nothing, verify says so instead of passing."""
    from shared.transparency.audit import Verdict

    key = network.signing_key.public_key()
    unexplained = Verdict(False, (("stored_tree_mismatch", "level 2 nodes 0-5", "the set-based proof failed"),))
    findings = network.tx(lambda tx: audit(tx, key, proven=lambda checkpoints: unexplained), readonly=True)
    assert [(check, subject) for check, subject, _ in findings] == [("stored_tree_mismatch", "level 2 nodes 0-5")]
    assert "rebuild" in findings[0][2]
    # the fast leaf check alone failing (a year after 9999) is no finding when the rebuild finds nothing
    assert network.tx(lambda tx: audit(tx, key, proven=lambda checkpoints: Verdict(False)), readonly=True) == []


@pytest.mark.postgres
def test_the_set_based_proof_names_the_failed_range_of_subtrees(network, grown):
    """On PostgreSQL the proof's verdict says which part failed, so the rebuild's silence is reported."""
    from shared.db.snapshot import run_in_snapshot
    from shared.models import Checkpoint
    from shared.transparency.audit import SQL_SETTINGS, TreeProof

    tamper(network, "UPDATE ledger_nodes SET hash = :h WHERE level = 2 AND node_index = 1", h=b"\x07" * 32)

    def prove(tx):
        proof = TreeProof(tx)
        checkpoints = list(tx.session.execute(select(Checkpoint)).scalars())
        return proof.holds(tx, run_in_snapshot(tx, proof.jobs(), 1, settings=SQL_SETTINGS), checkpoints)

    verdict = network.tx(prove, readonly=True)
    assert not verdict
    # the edited node is not the hash of its children, nor is its parent the hash of the edited node
    assert [(check, subject) for check, subject, _ in verdict.failed] == [
        ("stored_tree_mismatch", "level 2 nodes 0-4"), ("stored_tree_mismatch", "level 3 nodes 0-1")]
    assert [o.subject for o in run_verify(network).offences] == ["level 2 node 1"]  # the rebuild: exactly
