"""Rewriting sealed history in the database is detected by ``pointsnet verify`` and named.

Each test edits the database the way an insider with SQL access would, then runs
verify and expects the tampered entry (or checkpoint) to be named.
"""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from shared.ledger.verify import verify
from shared.programme.merge import merge_members
from shared.transparency.checkpoints import inclusion_proof
from shared.transparency.merkle import leaf_hash
from tests.factories import make_member, make_partner
from tests.transparency.conftest import TERMS


def run_verify(network):
    """On two connections (PostgreSQL; SQLite runs the checks one by one): tampering is found either way."""
    key = network.signing_key.public_key()
    return network.tx(lambda tx: verify(tx, public_key=key, workers=2), readonly=True)


def tamper(network, *statements: str, **params) -> None:
    def unit(tx):
        for statement in statements:
            tx.session.execute(text(statement), params)
    network.tx(unit)


def named(report, check: str) -> set[str]:
    return {o.subject for o in report.offences if o.check == check}


def test_an_untouched_sealed_ledger_verifies(network, sealed):
    report = run_verify(network)
    assert report.ok, report.offences
    assert report.counts["ledger_leaves"] == 3


def test_a_merge_after_sealing_leaves_the_ledger_verifiable(network, clock):
    """A merge moves the duplicate's lots to the survivor: the lots' leaves keep naming the member
    they were issued to (lots.merged_from), so an honest ledger still verifies and partners' inclusion
    proofs still match their leaves, before and after the next checkpoint; a lot's member edited
    by hand is still named."""
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    survivor, duplicate = make_member(network, coffee), make_member(network, coffee)
    earned = network.earn(coffee, duplicate, "d-1", points=450)["entry_id"]
    clock.advance(minutes=1)
    network.checkpoint()
    network.tx(lambda tx: merge_members(tx, survivor, duplicate, reason="same person"))
    later = network.earn(coffee, survivor, "s-1", points=10)["entry_id"]  # after the merge, sealed after it
    network.checkpoint()
    report = run_verify(network)
    assert report.ok, report.offences
    for entry_id in (earned, later):
        proof = network.tx(lambda tx: inclusion_proof(tx, coffee, entry_id), readonly=True)
        assert leaf_hash(base64.b64decode(proof["leaf_data"])) == base64.b64decode(proof["leaf_hash"])
    assert network.balance(survivor)["available"] == 460
    tamper(network, "UPDATE lots SET merged_from = :m WHERE entry_id = :e", m=survivor, e=earned)
    assert named(run_verify(network), "leaf_hash_mismatch") == {f"entry {earned}"}


def test_moving_lots_between_members_by_hand_is_named(network, clock):
    """The leaf names the member a lot was issued to; who holds it now is checked against the merges:
    two equal lots swapped between two members (the balances still add up) are named, whether or not
    the swap also fakes a merge's merged_from."""
    p1, p2 = make_partner(network, "P1", **TERMS), make_partner(network, "P2", **TERMS)
    a, b = make_member(network, p1, also_linked_to=(p2,)), make_member(network, p2, also_linked_to=(p1,))
    la = network.earn(p1, a, "a1", points=100)["lots"][0]["lot_id"]
    lb = network.earn(p2, b, "b1", points=100)["lots"][0]["lot_id"]
    clock.advance(minutes=1)
    network.checkpoint()
    assert run_verify(network).ok
    tamper(network, "UPDATE lots SET merged_from = member_id, member_id = :b WHERE id = :la",
           "UPDATE lots SET merged_from = member_id, member_id = :a WHERE id = :lb", a=a, b=b, la=la, lb=lb)
    assert named(run_verify(network), "lot_holder_follows_merges") == {la, lb}
    tamper(network, "UPDATE lots SET merged_from = NULL WHERE id IN (:la, :lb)", la=la, lb=lb)
    assert named(run_verify(network), "leaf_hash_mismatch") == {f"entry {e}" for e in (
        network.tx(lambda tx: [row[0] for row in tx.session.execute(text(
            "SELECT entry_id FROM lots WHERE id IN (:la, :lb)"), {"la": la, "lb": lb})], readonly=True))}


def test_a_lot_left_with_a_merged_member_is_named(network, clock):
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    survivor, duplicate = make_member(network, coffee), make_member(network, coffee)
    lot_id = network.earn(coffee, duplicate, "d-1", points=50)["lots"][0]["lot_id"]
    network.tx(lambda tx: merge_members(tx, survivor, duplicate, reason="same person"))
    assert run_verify(network).ok
    tamper(network, "UPDATE lots SET member_id = :d, merged_from = NULL WHERE id = :l", d=duplicate, l=lot_id)
    assert lot_id in named(run_verify(network), "lot_holder_follows_merges")


def test_editing_an_entrys_points_is_named(network, sealed):
    tamper(network, "UPDATE entries SET points = points + 1 WHERE id = :e", e=sealed.earn_air)
    assert named(run_verify(network), "leaf_hash_mismatch") == {f"entry {sealed.earn_air}"}


def test_editing_a_postings_points_is_named(network, sealed):
    tamper(network, "UPDATE transfers SET points = points + 100 WHERE entry_id = :e", e=sealed.earn_coffee)
    assert f"entry {sealed.earn_coffee}" in named(run_verify(network), "leaf_hash_mismatch")


def test_editing_a_postings_account_is_named(network, sealed):
    tamper(network, "UPDATE transfers SET credit_account = :acct WHERE entry_id = :e",
           acct=f"partner:{sealed.coffee}:redeemed", e=sealed.burn)
    assert f"entry {sealed.burn}" in named(run_verify(network), "leaf_hash_mismatch")


def test_editing_an_obligation_amount_is_named(network, sealed):
    tamper(network, "UPDATE obligation_lines SET amount_micro = amount_micro - 1000000 "
                    "WHERE entry_id = :e AND kind = 'redemption_fee'", e=sealed.burn)
    assert named(run_verify(network), "leaf_hash_mismatch") == {f"entry {sealed.burn}"}


def test_editing_an_entrys_time_is_named(network, sealed):
    tamper(network, "UPDATE entries SET posted_at = occurred_at WHERE id = :e", e=sealed.earn_coffee)
    tamper(network, "UPDATE entries SET posted_at = :t WHERE id = :e", t="2026-11-20 01:00:00",
           e=sealed.earn_coffee)
    assert named(run_verify(network), "leaf_hash_mismatch") == {f"entry {sealed.earn_coffee}"}


def test_a_balanced_edit_is_named(network, sealed):
    """Move 50 fen from one redemption line of the burn to the other: every sum, every net position
    and every classic invariant stays as it was; only the seal shows it."""
    tamper(network,
           "UPDATE obligation_lines SET amount_micro = amount_micro - 50000000 "
           "WHERE entry_id = :e AND kind = 'redemption' AND payer = :coffee",
           "UPDATE obligation_lines SET amount_micro = amount_micro + 50000000 "
           "WHERE entry_id = :e AND kind = 'redemption' AND payer = :air",
           e=sealed.burn, coffee=sealed.coffee, air=sealed.air)
    report = run_verify(network)
    assert {o.check for o in report.offences} == {"leaf_hash_mismatch", "checkpoint_root_mismatch"}
    assert named(report, "leaf_hash_mismatch") == {f"entry {sealed.burn}"}


def test_moving_points_between_two_consumptions_is_named(network, sealed):
    tamper(network,
           "UPDATE lot_consumptions SET points = points - 10 WHERE entry_id = :e AND seq = 1",
           "UPDATE lot_consumptions SET points = points + 10 WHERE entry_id = :e AND seq = 2", e=sealed.burn)
    assert f"entry {sealed.burn}" in named(run_verify(network), "leaf_hash_mismatch")


def test_deleting_a_sealed_entry_is_named(network, sealed):
    tamper(network,
           "DELETE FROM obligation_lines WHERE entry_id = :e",
           "DELETE FROM lot_consumptions WHERE entry_id = :e",
           "DELETE FROM transfers WHERE entry_id = :e",
           "DELETE FROM entries WHERE id = :e", e=sealed.burn)
    assert named(run_verify(network), "sealed_entry_missing") == {f"entry {sealed.burn}"}


def test_deleting_an_entry_and_its_leaf_is_caught_by_the_signed_checkpoint(network, sealed):
    tamper(network,
           "DELETE FROM obligation_lines WHERE entry_id = :e",
           "DELETE FROM lot_consumptions WHERE entry_id = :e",
           "DELETE FROM transfers WHERE entry_id = :e",
           "DELETE FROM entries WHERE id = :e",
           "DELETE FROM ledger_leaves WHERE entry_id = :e", e=sealed.burn)
    report = run_verify(network)
    assert named(report, "checkpoint_root_mismatch")


def test_reordering_two_sealed_entries_is_named(network, sealed):
    tamper(network,
           "UPDATE ledger_leaves SET entry_id = 'swap' WHERE entry_id = :a",
           "UPDATE ledger_leaves SET entry_id = :a WHERE entry_id = :b",
           "UPDATE ledger_leaves SET entry_id = :b WHERE entry_id = 'swap'", a=sealed.earn_coffee, b=sealed.earn_air)
    assert named(run_verify(network), "leaf_hash_mismatch") == {f"entry {sealed.earn_coffee}",
                                                                f"entry {sealed.earn_air}"}


def test_reordering_leaves_with_their_hashes_is_caught_by_the_signed_checkpoint(network, sealed):
    tamper(network,
           "UPDATE ledger_leaves SET leaf_index = 100 WHERE leaf_index = 0",
           "UPDATE ledger_leaves SET leaf_index = 0 WHERE leaf_index = 1",
           "UPDATE ledger_leaves SET leaf_index = 1 WHERE leaf_index = 100")
    report = run_verify(network)
    assert named(report, "checkpoint_root_mismatch")
    assert not named(report, "leaf_hash_mismatch")


def test_an_entry_slipped_into_a_sealed_cycle_is_named(network, sealed, clock):
    """Once a closed cycle is sealed, an entry that appears in it later was not written by the ledger."""
    from shared.models import Entry

    first = network.tx(lambda tx: tx.session.get(Entry, sealed.burn).cycle_date)
    clock.advance(days=1)
    network.settle(first)  # closes the first cycle; its settlement seals it
    network.checkpoint()
    assert run_verify(network).ok
    late = network.earn(sealed.coffee, sealed.member, "late-1", points=10)["entry_id"]
    tamper(network, "UPDATE entries SET cycle_date = :c WHERE id = :e",
           "UPDATE obligation_lines SET cycle_date = :c WHERE entry_id = :e", c=first, e=late)
    report = run_verify(network)
    assert named(report, "entry_not_sealed") == {f"entry {late}"}
    network.seal()  # the sealer never appends to a sealed cycle
    assert named(run_verify(network), "entry_not_sealed") == {f"entry {late}"}


def test_a_forged_checkpoint_signature_is_named(network, sealed):
    tamper(network, "UPDATE checkpoints SET note = REPLACE(note, :old, :new)",
           old="\n3\n", new="\n4\n")
    assert named(run_verify(network), "checkpoint_signature")


@pytest.mark.parametrize("jobs", [[], ["--jobs", "1"], ["--jobs", "3"]])
def test_the_verify_command_names_the_tampered_entry(network, sealed, settings, database_url, monkeypatch, jobs):
    from services.cli import app

    tamper(network, "UPDATE entries SET points = points + 1 WHERE id = :e", e=sealed.burn)
    monkeypatch.setenv("POINTSNET_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("POINTSNET_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["verify", *jobs])
    assert result.exit_code == 1
    assert f"leaf_hash_mismatch: entry {sealed.burn}" in result.output


def test_a_varied_ledger_seals_and_verifies(network, sealed, clock):
    """Holds, captures, voids, reversals, network bonuses and non-ASCII references encode the same way
    wherever leaves are hashed (Python when sealing; in PostgreSQL with sha256() when verifying)."""
    hold = network.hold(sealed.book, sealed.member, "hold-1", 50)
    network.capture(sealed.book, hold["hold_id"], 30, reference="capture-1")
    other = network.hold(sealed.book, sealed.member, "hold-2", 10)
    network.void(sealed.book, other["hold_id"])
    network.reverse(sealed.book, "rev-1", "capture-1", 10)
    network.earn(sealed.coffee, sealed.member, "订单-42 ünïcode", points=7)
    network.grant_bonus(sealed.member, 25, reason="welcome")
    clock.advance(seconds=30)
    network.checkpoint()
    report = run_verify(network)
    assert report.ok, report.offences
    assert report.counts["ledger_leaves"] == report.counts["entries"]


@pytest.mark.parametrize("column", ["posted_at", "occurred_at"])
def test_moving_a_sealed_time_before_the_common_era_is_named(network, sealed, column):
    """An entry's time moved into BC, the same day and hour: PostgreSQL's to_char writes no sign for the
    year, so its encoding was byte for byte the AD time's and verify found nothing (until 2026-12-07); on
    SQLite, a stored time that is no time at all stopped verify with a ValueError instead of naming it."""
    if network.db.dialect == "postgresql":
        tamper(network, f"UPDATE entries SET {column} = ((to_char({column}, 'YYYY-MM-DD HH24:MI:SS.US') || ' BC')"
                        f")::timestamp WHERE id = :e", e=sealed.earn_coffee)
    else:
        tamper(network, f"UPDATE entries SET {column} = '0' || {column} || ' BC' WHERE id = :e", e=sealed.earn_coffee)
    assert named(run_verify(network), "leaf_hash_mismatch") == {f"entry {sealed.earn_coffee}"}


def test_moving_a_sealed_lots_issue_time_before_the_common_era_is_named(network, sealed):
    """A lot's issued_at decides the consumption order (expiry, issue time, id), so which funder pays later."""
    if network.db.dialect == "postgresql":
        tamper(network, "UPDATE lots SET issued_at = ((to_char(issued_at, 'YYYY-MM-DD HH24:MI:SS.US') || ' BC')"
                        ")::timestamp WHERE entry_id = :e", e=sealed.earn_air)
    else:
        tamper(network, "UPDATE lots SET issued_at = 'yesterday' WHERE entry_id = :e", e=sealed.earn_air)
    assert named(run_verify(network), "leaf_hash_mismatch") == {f"entry {sealed.earn_air}"}
