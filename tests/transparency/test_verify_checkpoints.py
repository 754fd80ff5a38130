"""`pointsnet verify` over the signed checkpoints as an operator runs it: an untouched ledger verifies
from its first minute, and a checkpoint is judged by the name it was signed under."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from typer.testing import CliRunner

from shared.network import Network
from shared.transparency.note import note_body, sign_note
from tests.factories import make_member, make_partner


@pytest.fixture
def pointsnet_verify(settings, database_url, monkeypatch):
    """``pointsnet verify --json`` on the test's network: (exit code, offences as (check, subject))."""
    from services.cli import app

    monkeypatch.setenv("POINTSNET_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("POINTSNET_DATABASE_URL", database_url)

    def run(**env) -> tuple[int, list[tuple[str, str]]]:
        for name, value in env.items():
            monkeypatch.setenv(f"POINTSNET_{name.upper()}", value)
        result = CliRunner().invoke(app, ["verify", "--json"])
        report = json.loads(result.stdout)
        return result.exit_code, [(o["check"], o["subject"]) for o in report["offences"]]
    return run


def _checkpoint_ids(network) -> list[int]:
    return network.tx(lambda tx: list(tx.session.execute(text("SELECT id FROM checkpoints ORDER BY id")).scalars()),
                      readonly=True)


def test_a_network_with_only_checkpoints_of_the_empty_tree_verifies(network, clock, pointsnet_verify):
    """Before the first transaction the checkpoint job signs the empty tree every minute."""
    network.checkpoint()
    clock.advance(minutes=1)
    network.checkpoint()
    assert pointsnet_verify() == (0, [])


def test_a_checkpoint_of_the_empty_tree_with_another_root_is_still_named(network, clock, pointsnet_verify):
    network.checkpoint()
    clock.advance(minutes=1)
    network.checkpoint()
    [_, forged] = _checkpoint_ids(network)
    network.tx(lambda tx: tx.session.execute(text("UPDATE checkpoints SET root_hash = :root WHERE id = :id"),
                                             {"root": b"\x07" * 32, "id": forged}))
    code, offences = pointsnet_verify()
    assert code == 1 and ("checkpoint_signature", f"checkpoint {forged}") in offences


def test_a_signed_checkpoint_of_leaves_the_tree_does_not_hold_is_named(network, pointsnet_verify):
    """A note signed (with the network key) for one leaf, though the tree is empty: history rewritten."""
    network.checkpoint()
    root = b"\x05" * 32
    name = "pointsnet.local/ledger"
    note = sign_note(note_body(name, 1, root, network.clock.now()), name, network.signing_key)
    network.tx(lambda tx: tx.session.execute(text(
        "INSERT INTO checkpoints (tree_size, root_hash, created_at, note) VALUES (1, :root, :at, :note)"),
        {"root": root, "at": network.clock.now(), "note": note}))
    [_, rewritten] = _checkpoint_ids(network)
    code, offences = pointsnet_verify()
    assert code == 1 and offences == [("checkpoint_root_mismatch", f"checkpoint {rewritten}")]


def test_checkpoints_signed_before_the_public_authority_was_set_still_verify(network, settings, database_url,
                                                                            clock, pointsnet_verify):
    """An operator sets POINTSNET_PUBLIC_AUTHORITY on a running network: the checkpoints signed before
    under ``pointsnet.local/ledger`` are genuine (same key) and verify, as the later ones do."""
    shop = make_partner(network)
    network.earn(shop, make_member(network, shop), "e1", points=10)
    network.checkpoint()
    renamed = Network(settings.model_copy(update={"public_authority": "points.example.com"}),
                      database_url=database_url, clock=clock, pool_size=5)
    try:
        network.earn(shop, make_member(network, shop), "e2", points=10)
        clock.advance(minutes=1)
        renamed.checkpoint()
    finally:
        renamed.close()
    notes = network.tx(lambda tx: list(tx.session.execute(text("SELECT note FROM checkpoints ORDER BY id"))
                                       .scalars()), readonly=True)
    assert [note.split("\n", 1)[0] for note in notes] == ["pointsnet.local/ledger", "points.example.com/ledger"]
    assert pointsnet_verify(public_authority="points.example.com") == (0, [])
    assert pointsnet_verify() == (0, [])


def test_a_checkpoint_under_its_own_name_but_not_by_the_network_key_is_still_named(network, pointsnet_verify):
    """Taking the name from the note does not take the key from it: a note signed by another key
    under the network's name, or one whose name line was edited, is named."""
    shop = make_partner(network)
    network.earn(shop, make_member(network, shop), "e1", points=10)
    network.checkpoint()
    network.checkpoint()
    [forged, renamed] = _checkpoint_ids(network)

    def rewrite(tx):
        note = tx.session.execute(text("SELECT note FROM checkpoints WHERE id = :id"), {"id": forged}).scalar_one()
        body = note.split("\n\n", 1)[0] + "\n"
        tx.session.execute(text("UPDATE checkpoints SET note = :note WHERE id = :id"), {
            "note": sign_note(body, "pointsnet.local/ledger", Ed25519PrivateKey.generate()), "id": forged})
        tx.session.execute(text("UPDATE checkpoints SET note = REPLACE(note, 'pointsnet.local/ledger\n', "
                                "'points.example.com/ledger\n') WHERE id = :id"), {"id": renamed})
    network.tx(rewrite)
    code, offences = pointsnet_verify()
    assert code == 1
    assert len(offences) == 2 and set(offences) == {("checkpoint_signature", f"checkpoint {forged}"),
                                                    ("checkpoint_signature", f"checkpoint {renamed}")}


def test_a_note_by_the_network_key_under_an_origin_the_network_never_used_is_named(network, settings, database_url,
                                                                                  clock, pointsnet_verify):
    """Each note was checked under the origin written in it, so a note the network's key signed for any
    origin passed — one of another log the key also signs (a staging network sharing the key), copied in.
    The network records every origin it has signed checkpoints under; a note under another is named."""
    shop = make_partner(network)
    network.earn(shop, make_member(network, shop), "e1", points=10)
    network.checkpoint()
    [genuine] = _checkpoint_ids(network)

    def copy_in(tx):
        size, root = tx.session.execute(text("SELECT tree_size, root_hash FROM checkpoints WHERE id = :id"),
                                        {"id": genuine}).one()
        name = "staging.points.example.com/ledger"
        note = sign_note(note_body(name, size, bytes(root), network.clock.now()), name, network.signing_key)
        tx.session.execute(text("INSERT INTO checkpoints (tree_size, root_hash, created_at, note) "
                                "VALUES (:size, :root, :at, :note)"),
                           {"size": size, "root": root, "at": network.clock.now(), "note": note})
    network.tx(copy_in)
    [_, copied] = _checkpoint_ids(network)
    code, offences = pointsnet_verify()
    assert code == 1 and offences == [("checkpoint_origin", f"checkpoint {copied}")], offences
    # the same note under an origin this network did sign under (set as its public authority later) holds
    renamed = Network(settings.model_copy(update={"public_authority": "staging.points.example.com"}),
                      database_url=database_url, clock=clock, pool_size=2)
    try:
        renamed.checkpoint()
    finally:
        renamed.close()
    assert pointsnet_verify() == (0, [])


def test_a_checkpoint_whose_time_was_moved_is_named(network, clock, pointsnet_verify):
    """A row's created_at is served beside its note (``GET /v1/checkpoints``); it is the note's signed
    timestamp line. Moved back three days, the row disagrees with what the network signed."""
    from datetime import timedelta

    from sqlalchemy import update

    from shared.models import Checkpoint

    shop = make_partner(network, "Shop")
    network.earn(shop, make_member(network, shop), "e1", points=10)
    network.checkpoint()
    clock.advance(minutes=1)
    network.checkpoint()
    [_, moved] = _checkpoint_ids(network)
    assert pointsnet_verify() == (0, [])
    signed_at = network.tx(lambda tx: tx.session.get(Checkpoint, moved).created_at, readonly=True)
    network.tx(lambda tx: tx.session.execute(update(Checkpoint).where(Checkpoint.id == moved)
                                             .values(created_at=signed_at - timedelta(days=3))))
    assert pointsnet_verify() == (1, [("checkpoint_signature", f"checkpoint {moved}")])
    # a second is a second too: the note's timestamp is to the second
    network.tx(lambda tx: tx.session.execute(update(Checkpoint).where(Checkpoint.id == moved)
                                             .values(created_at=signed_at + timedelta(seconds=1))))
    assert pointsnet_verify() == (1, [("checkpoint_signature", f"checkpoint {moved}")])


def test_a_checkpoint_signed_within_a_second_verifies(network, clock, pointsnet_verify):
    """The row keeps the signing time to the microsecond, the note to the second (truncated, not
    rounded): the two agree however far into its second a checkpoint was signed."""
    shop = make_partner(network, "Shop")
    network.earn(shop, make_member(network, shop), "e1", points=10)
    for fraction in (0.000001, 0.5, 0.999999):
        clock.advance(seconds=1 + fraction)
        network.checkpoint()
    assert pointsnet_verify() == (0, [])
