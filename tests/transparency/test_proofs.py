"""Inclusion and consistency proofs, checked by the independent verifier in tests/transparency/rfc9162.py."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings as hsettings, strategies as st
from sqlalchemy import select

from shared.models import LedgerLeaf
from shared.transparency import merkle
from shared.transparency.checkpoints import consistency_proof
from shared.transparency.store import StoredTree, seal_batch
from tests.factories import make_member, make_partner
from tests.transparency import rfc9162


def _leaves(n: int) -> list[bytes]:
    return [rfc9162.leaf(b"entry %d" % i) for i in range(n)]


@hsettings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_inclusion_proofs_verify_independently(size, data):
    leaves = _leaves(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    path = merkle.inclusion_path(index, size, lambda a, b: merkle.mth(leaves, a, b))
    expected = rfc9162.root(leaves)
    assert merkle.mth(leaves) == expected
    assert rfc9162.inclusion_ok(index, size, leaves[index], path, expected)
    assert not rfc9162.inclusion_ok(index, size, rfc9162.leaf(b"forged"), path, expected)
    if size > 1:
        assert not rfc9162.inclusion_ok((index + 1) % size, size, leaves[index], path, expected)


@hsettings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_consistency_proofs_verify_independently(new_size, data):
    leaves = _leaves(new_size)
    old_size = data.draw(st.integers(min_value=1, max_value=new_size))
    path = merkle.consistency_path(old_size, new_size, lambda a, b: merkle.mth(leaves, a, b))
    old_root, new_root = rfc9162.root(leaves[:old_size]), rfc9162.root(leaves)
    assert rfc9162.consistency_ok(old_size, new_size, old_root, new_root, path)
    forked = leaves[:old_size - 1] + [rfc9162.leaf(b"rewritten")] + leaves[old_size:]
    assert not rfc9162.consistency_ok(old_size, new_size, rfc9162.root(forked[:old_size]), new_root, path)


@hsettings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8))
def test_the_compact_range_grows_to_the_rfc_root(batches):
    leaves = _leaves(sum(batches))
    tree, at = merkle.CompactRange(), 0
    for batch in batches:
        for h in leaves[at:at + batch]:
            tree.append(h)
        at += batch
        assert tree.root() == rfc9162.root(leaves[:at])
        resumed = merkle.CompactRange(at, [merkle.mth(leaves, i << lvl, (i + 1) << lvl)
                                           for lvl, i in merkle.edge_ranges(at)])
        assert resumed.root() == tree.root()


def test_the_stored_tree_answers_every_proof(network, clock):
    """Sealed a few entries at a time (so the store resumes from its right edge), the stored subtrees
    give the same roots and proofs as the leaves themselves, for every size."""
    partner = make_partner(network)
    member = make_member(network, partner)
    for i in range(23):
        network.earn(partner, member, f"e{i}", points=i + 1)
        clock.advance(seconds=1)
    sealed = 0
    while True:
        n = network.tx(lambda tx: seal_batch(tx, limit=3))
        sealed += n
        if n < 3:
            break
    assert sealed == 23
    leaves = network.tx(lambda tx: [bytes(h) for h in tx.session.execute(
        select(LedgerLeaf.leaf_hash).order_by(LedgerLeaf.leaf_index)).scalars()], readonly=True)
    assert len(leaves) == 23

    def check(tx):
        tree = StoredTree(tx)
        for size in range(1, 24):
            assert tree.root(size) == rfc9162.root(leaves[:size])
            for index in range(size):
                assert rfc9162.inclusion_ok(index, size, leaves[index], tree.inclusion(index, size),
                                            rfc9162.root(leaves[:size]))
            for old in range(1, size + 1):
                assert rfc9162.consistency_ok(old, size, rfc9162.root(leaves[:old]), rfc9162.root(leaves[:size]),
                                              tree.consistency(old, size))
    network.tx(check, readonly=True)


def test_a_checkpoint_verifies_from_its_note_text_alone(network, clock):
    """Parse the C2SP note by hand and check the Ed25519 signature with cryptography directly."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "n1", points=5)
    key = network.signing_key
    note = network.checkpoint()["note"]
    body, blank, signatures = note.partition("\n\n")
    assert blank
    origin, size, root_b64, *extensions = body.split("\n")
    assert origin == "pointsnet.local/ledger" and size == "1" and extensions[0].startswith("timestamp ")
    [line] = signatures.rstrip("\n").split("\n")
    dash, name, sig_b64 = line.split(" ")
    assert dash == "\u2014" and name == origin
    raw = base64.b64decode(sig_b64)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw[:4] == hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    key.public_key().verify(raw[4:], (body + "\n").encode())  # raises if it does not verify
    leaf = network.tx(lambda tx: bytes(tx.session.execute(select(LedgerLeaf.leaf_hash)).scalar_one()))
    assert base64.b64decode(root_b64) == rfc9162.root([leaf])


def test_consistency_proofs_between_stored_checkpoints(network, clock):
    partner = make_partner(network)
    member = make_member(network, partner)
    sizes = []
    for round_ in range(4):
        for i in range(round_ + 2):
            network.earn(partner, member, f"c{round_}-{i}", points=1)
        sizes.append(network.checkpoint())
    roots = {c["tree_size"]: base64.b64decode(c["root_hash"]) for c in sizes}
    for old in roots:
        for new in roots:
            if old <= new:
                proof = network.tx(lambda tx: consistency_proof(tx, old, new), readonly=True)
                assert rfc9162.consistency_ok(old, new, roots[old], roots[new],
                                              [base64.b64decode(p) for p in proof["consistency_path"]])
