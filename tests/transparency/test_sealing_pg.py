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
