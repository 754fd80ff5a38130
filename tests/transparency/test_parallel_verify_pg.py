"""``pointsnet verify`` on several connections (PostgreSQL): the jobs see the unit's snapshot, the
ranges of entry ids split the leaves exactly, and tampering in any range is found and named."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.db.snapshot import run_in_snapshot
from shared.ledger.verify import verify
from shared.transparency.audit import TreeProof
from tests.factories import make_member, make_partner

pytestmark = pytest.mark.postgres


@pytest.fixture
def ledger(network):
    partner = make_partner(network)
    members = [make_member(network, partner) for _ in range(3)]
    for i in range(30):
        network.earn(partner, members[i % 3], f"e{i}", points=10 + i)
    network.seal()
    network.checkpoint()
    return partner, members


def test_the_jobs_see_the_units_snapshot_on_other_connections(network, ledger):
    partner, members = ledger

    def job(connection):
        return (connection.execute(text("SELECT COUNT(*) FROM entries")).scalar_one(),
                connection.execute(text("SELECT pg_backend_pid()")).scalar_one(),
                connection.execute(text("SELECT current_setting('transaction_read_only')")).scalar_one())

    def unit(tx):
        before = tx.session.execute(text("SELECT COUNT(*) FROM entries")).scalar_one()
        main = tx.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        network.earn(partner, members[0], "committed-meanwhile", points=5)  # another unit commits
        return before, main, run_in_snapshot(tx, [job] * 4, 2)

    before, main, results = network.tx(unit, readonly=True)
    assert before == 30
    assert [count for count, _, _ in results] == [30] * 4  # not the entry committed after the snapshot
    assert main not in {pid for _, pid, _ in results}
    assert {read_only for _, _, read_only in results} == {"on"}
    assert network.tx(lambda tx: tx.session.execute(text("SELECT COUNT(*) FROM entries")).scalar_one()) == 31


@pytest.mark.parametrize("slices", [2, 3, 7, 64])
def test_the_ranges_of_entry_ids_split_the_leaves_exactly(network, ledger, slices):
    def unit(tx):
        bounds = TreeProof(tx, slices=slices).bounds
        edges = [None, *bounds, None]
        counts = []
        for low, high in zip(edges, edges[1:]):
            where = ["TRUE"] + ["entry_id >= :low"] * (low is not None) + ["entry_id < :high"] * (high is not None)
            counts.append(tx.session.execute(text(f"SELECT COUNT(*) FROM ledger_leaves WHERE {' AND '.join(where)}"),
                                             {"low": low, "high": high}).scalar_one())
        return bounds, counts

    bounds, counts = network.tx(unit, readonly=True)
    assert sum(counts) == 30  # every leaf in exactly one range
    if slices < 30:  # as many ranges as asked, none empty (with more ranges than leaves, some are)
        assert len(bounds) == slices - 1 and all(counts)


def test_parallel_verify_agrees_with_one_connection_and_names_tampering_in_every_range(network, ledger):
    key = network.signing_key.public_key()

    def run(workers: int):
        return network.tx(lambda tx: verify(tx, public_key=key, workers=workers), readonly=True)

    serial, parallel = run(1), run(3)
    assert serial.ok and parallel.ok and serial.counts == parallel.counts
    ids = network.tx(lambda tx: list(tx.session.execute(text(
        "SELECT entry_id FROM ledger_leaves ORDER BY entry_id")).scalars()))
    tampered = [ids[0], ids[len(ids) // 2], ids[-1]]  # the first, a middle and the last range
    network.tx(lambda tx: tx.session.execute(text("UPDATE transfers SET points = points + 1 WHERE entry_id = ANY(:ids)"),
                                             {"ids": tampered}))
    serial, parallel = run(1), run(3)
    named = {o.subject for o in parallel.offences if o.check == "leaf_hash_mismatch"}
    assert named == {f"entry {entry}" for entry in tampered}
    assert parallel.offences == serial.offences


@pytest.mark.parametrize("year", ["10000", "123456"])
def test_a_year_the_fast_path_cannot_encode_costs_time_never_a_false_finding(network, ledger, year):
    """Verify's fast path writes a time's length as 27 (years 1-9999). A sealed entry of another year
    fails to match there, so verify rebuilds the tree with the exact encoding: the ledger verifies, and
    an edit of that time is still found and named."""
    from shared.transparency.audit import SQL_SETTINGS
    from shared.transparency.encoding import bad_leaves_sql

    partner, members = ledger
    entry = network.earn(partner, members[0], "odd-year", points=3)["entry_id"]
    network.tx(lambda tx: tx.session.execute(text(  # as written, before sealing: the leaf is exact
        f"UPDATE entries SET occurred_at = TIMESTAMPTZ '{year}-06-01 12:00:00Z' WHERE id = :e"), {"e": entry}))
    network.seal()
    network.checkpoint()

    def fast_path_misses(tx):
        for setting in SQL_SETTINGS:
            tx.session.execute(text(f"SET LOCAL {setting}"))
        return tx.session.execute(text(bad_leaves_sql())).first() is not None
    assert network.tx(fast_path_misses, readonly=True)
    key = network.signing_key.public_key()
    report = network.tx(lambda tx: verify(tx, public_key=key, workers=2), readonly=True)
    assert report.ok, report.offences
    network.tx(lambda tx: tx.session.execute(text(
        "UPDATE entries SET occurred_at = occurred_at + INTERVAL '1 microsecond' WHERE id = :e"), {"e": entry}))
    report = network.tx(lambda tx: verify(tx, public_key=key, workers=2), readonly=True)
    assert {o.subject for o in report.offences if o.check == "leaf_hash_mismatch"} == {f"entry {entry}"}
