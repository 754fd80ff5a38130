"""Sealing while many writers commit, on PostgreSQL: every entry sealed exactly once, the tree verifies."""

from __future__ import annotations

import threading

import pytest

from shared.ledger.verify import verify
from tests.factories import make_member, make_partner

pytestmark = pytest.mark.postgres


def test_sealing_runs_beside_writers(network):
    partner = make_partner(network)
    members = [make_member(network, partner) for _ in range(4)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(40):
                network.earn(partner, members[n], f"w{n}-{i}", points=1 + i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def seal() -> None:
        try:
            while not stop.is_set():
                network.seal()
                network.checkpoint()
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    sealers = [threading.Thread(target=seal) for _ in range(2)]  # two sealers: the lock keeps them apart
    for thread in writers + sealers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in sealers:
        thread.join()
    assert not errors, errors
    network.checkpoint()
    key = network.signing_key.public_key()
    report = network.tx(lambda tx: verify(tx, public_key=key), readonly=True)
    assert report.ok, report.offences
    assert report.counts["ledger_leaves"] == report.counts["entries"] == 160


def test_postgresql_encodes_exactly_like_python(network, clock):
    """Sealing and verify hash inside PostgreSQL on this database; the Python encoder (SQLite, the
    docs, auditors' re-implementations) must give the same leaf for every kind of entry."""
    from shared.models import Entry
    from shared.transparency.encoding import hash_entries, sql_hash_entries
    from tests.transparency.conftest import TERMS

    coffee = make_partner(network, "CoffeeCo", **TERMS)
    book = make_partner(network, "BookMart", **TERMS)
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "订单-1 ünï", points=500)
    network.burn(book, member, "b-1", 100)
    hold = network.hold(book, member, "h-1", 50)
    network.capture(book, hold["hold_id"], 30, reference="c-1")
    network.void(book, network.hold(book, member, "h-2", 5)["hold_id"])
    network.reverse(book, "r-1", "c-1", 10)
    network.grant_bonus(member, 25, reason="welcome")
    ids = network.tx(lambda tx: [e.id for e in tx.session.query(Entry).all()], readonly=True)
    python = network.tx(lambda tx: hash_entries(tx, ids), readonly=True)
    sql = network.tx(lambda tx: sql_hash_entries(tx, ids), readonly=True)
    assert len(ids) >= 7 and python == sql


def test_set_based_and_per_entry_sql_hash_every_odd_value_like_python(network, clock):
    """The leaf of an entry whose fields are unicode, NULL, negative, very large, and whose children were
    written out of id order: Python's encoder, the set-based SQL (sealing, verify) and the per-entry SQL
    give the same bytes."""
    from datetime import datetime, timezone

    from sqlalchemy import insert, text

    from shared.models import Cycle, Entry, Lot, LotConsumption, ObligationLine, Transfer
    from shared.transparency.encoding import _LEAF_HASH, hash_entries, set_leaf_hashes, sql_hash_entries

    partner = make_partner(network, "Ünïcødé 商店")
    member = make_member(network, partner)
    contract = network.tx(lambda tx: tx.session.execute(text(
        "SELECT id FROM contracts WHERE partner_id = :p"), {"p": partner}).scalar_one())
    at = datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=timezone.utc)
    plain = datetime(2026, 3, 2, tzinfo=timezone.utc)  # no fraction: still six digits

    def write(tx):
        tx.session.execute(insert(Cycle.__table__).values(cycle_date=at.date(), status="open"))
        tx.session.execute(insert(Entry.__table__), [
            dict(id="ent_odd_1", kind="earn", partner_id=partner, member_id=member, points=10**15 + 7,
                 reference="订单 №1 — 'quoted' \"twice\" ,:- 🎉\ttab", cycle_date=at.date(), posted_at=at,
                 occurred_at=None, original_entry_id=None, hold_id=None),
            dict(id="ent_odd_2", kind="reversal", partner_id=None, member_id=None, points=1, reference=None,
                 cycle_date=at.date(), posted_at=plain, occurred_at=plain, original_entry_id="ent_odd_1",
                 hold_id="hld_ñ")])
        tx.session.execute(insert(Transfer.__table__), [  # written against id order
            dict(id=f"trf_odd_{n}", entry_id="ent_odd_1", debit_account=f"partner:{partner}:issued",
                 credit_account=f"member:{member}", points=p) for n, p in ((9, 1), (10, 2), (1, 9 * 10**14))] + [
            dict(id="trf_odd_z", entry_id="ent_odd_2", debit_account=f"member:{member}",
                 credit_account=f"partner:{partner}:issued", points=1)])
        tx.session.execute(insert(Lot.__table__), [
            dict(id=f"lot_odd_{n}", member_id=member, entry_id="ent_odd_1", funder_partner_id=partner,
                 billing="postpaid", contract_id=contract, points=10**12, remaining=0, reserved=0, issued_at=at,
                 expires_at=at) for n in ("b", "a", "B", "é")])
        tx.session.execute(insert(LotConsumption.__table__), [
            dict(id=f"lc_odd_{seq}", entry_id="ent_odd_2", lot_id="lot_odd_a", seq=seq, points=p)
            for seq, p in ((3, -5), (1, 7), (2, -(10**12)))])
        tx.session.execute(insert(ObligationLine.__table__), [
            dict(id=f"obl_odd_{n}", entry_id="ent_odd_2", cycle_date=at.date(), payer="network", payee=partner,
                 kind="breakage_refund", points=-3, amount_micro=amount, contract_id=None, lot_id=None,
                 original_line_id=None) for n, amount in (("2", -(2**62)), ("10", 0), ("1", 2**62))])
    network.tx(write)
    ids = ["ent_odd_1", "ent_odd_2"]
    python = network.tx(lambda tx: hash_entries(tx, ids), readonly=True)
    set_based = network.tx(lambda tx: sql_hash_entries(tx, ids), readonly=True)
    whole = network.tx(lambda tx: {row[0]: bytes(row[1]) for row in tx.session.execute(text(
        f"SELECT entry_id, leaf_hash FROM ({set_leaf_hashes()}) h WHERE entry_id LIKE 'ent_odd_%'"))},
        readonly=True)
    per_entry = network.tx(lambda tx: {row[0]: bytes(row[1]) for row in tx.session.execute(text(
        f"SELECT e.id, {_LEAF_HASH} FROM entries e WHERE e.id LIKE 'ent_odd_%'"))}, readonly=True)
    fast = network.tx(lambda tx: {row[0]: bytes(row[1]) for row in tx.session.execute(text(
        f"SELECT entry_id, leaf_hash FROM ({set_leaf_hashes(fast=True)}) h WHERE entry_id LIKE 'ent_odd_%'"))},
        readonly=True)  # verify's fast path
    assert set(python) == set(ids)
    assert python == set_based == whole == per_entry == fast
