"""Sealing searches the recent id range first and the whole open cycle only when that comes up short:
an entry that commits late with an old id is still sealed, exactly once, and the tree verifies."""

from __future__ import annotations

import pytest

import shared.ledger.journal as journal
from shared.ledger.verify import verify
from shared.transparency import store
from tests.factories import make_member, make_partner


@pytest.fixture
def shop(network, monkeypatch):
    """A partner and a member, and a small window: the last 3 leaves, 5 ids (tests may widen SCAN)."""
    monkeypatch.setattr(store, "LOOKBACK", 3)
    monkeypatch.setattr(store, "SCAN", 5)
    partner = make_partner(network)
    return partner, make_member(network, partner)


def assert_each_sealed_once(network, entries: int) -> None:
    """verify finds the tree sound (each entry's leaf, every checkpoint) and one leaf per entry."""
    report = network.tx(lambda tx: verify(tx, public_key=network.signing_key.public_key()), readonly=True)
    assert report.ok, report.offences
    assert report.counts["ledger_leaves"] == report.counts["entries"] == entries


def earn_with_id(network, monkeypatch, shop, entry_id: str, reference: str) -> None:
    """An earn whose entry gets ``entry_id``, as a writer whose clock ran behind or ahead would make it."""
    real_new_id = journal.new_id
    monkeypatch.setattr(journal, "new_id", lambda prefix: entry_id if prefix == "ent" else real_new_id(prefix))
    try:
        network.earn(*shop, reference, points=5)
    finally:
        monkeypatch.setattr(journal, "new_id", real_new_id)


def test_recent_range_first_and_a_late_old_id_still_sealed_once(network, monkeypatch, shop):
    partner, member = shop
    for i in range(8):
        network.earn(partner, member, f"e{i}", points=10 + i)
    batches = []
    while done := network.tx(lambda tx: store.seal_batch(tx, 2)):
        batches.append(done)
    assert sum(batches) == 8
    earn_with_id(network, monkeypatch, shop, "ent_0000late", "late")  # below every sealed id: outside the range
    network.earn(partner, member, "after", points=6)
    assert network.tx(lambda tx: store._recent(tx, store.tree_size(tx), 10), readonly=True)[0] != []
    assert network.tx(lambda tx: store.seal_batch(tx, 10)) == 2  # the recent one, and the late one by the full search
    assert network.tx(lambda tx: store.seal_batch(tx, 10)) == 0
    network.checkpoint()
    assert_each_sealed_once(network, 10)


def test_an_entry_sealed_before_the_last_leaves_is_not_sealed_again(network, monkeypatch, shop):
    """The window's sealed entries are mostly the last LOOKBACK leaves; one sealed earlier whose id
    still falls in the window (an id made ahead of the others) is looked up, not sealed twice."""
    partner, member = shop
    monkeypatch.setattr(store, "SCAN", 10)
    earn_with_id(network, monkeypatch, shop, "ent_zzzzahead", "ahead")  # an id above every later one
    assert network.tx(lambda tx: store.seal_batch(tx, 10)) == 1
    for i in range(5):
        network.earn(partner, member, f"e{i}", points=10 + i)
    while network.tx(lambda tx: store.seal_batch(tx, 2)):
        pass
    size = network.tx(store.tree_size, readonly=True)
    assert size == 6
    fresh, _ = network.tx(lambda tx: store._recent(tx, size, 10), readonly=True)
    assert fresh == []  # "ahead" is in the id window, outside the last 3 leaves, and sealed already
    network.earn(partner, member, "after", points=6)
    assert network.tx(lambda tx: store.seal_batch(tx, 10)) == 1
    network.checkpoint()
    assert_each_sealed_once(network, 7)


def test_the_sealing_job_leaves_a_late_old_id_to_the_checkpoints_pass(network, monkeypatch, shop):
    """The sealing job's passes (every 10 s) search only the recent id range; a late entry with an old
    id is found by the checkpoint job's pass (every minute), which searches the whole open cycles, and
    is in the checkpoint it signs. A tree smaller than LOOKBACK is searched whole by every pass."""
    from services.clearing.jobs import ledger_jobs
    from shared.transparency.checkpoints import latest

    partner, member = shop
    monkeypatch.setattr(store, "SCAN", 10)
    jobs = {job.name: job for job in ledger_jobs(network)}
    network.earn(partner, member, "e0", points=10)
    assert network.seal(search_all=False) == 1  # a tree smaller than LOOKBACK: searched whole
    for i in range(1, 5):
        network.earn(partner, member, f"e{i}", points=10 + i)
    jobs["ledger_sealing"].run()
    assert network.tx(store.tree_size, readonly=True) == 5
    earn_with_id(network, monkeypatch, shop, "ent_0000late", "late")
    network.earn(partner, member, "after", points=6)
    jobs["ledger_sealing"].run()
    assert network.tx(store.tree_size, readonly=True) == 6  # "after"; "late" is below the recent range
    assert network.tx(lambda tx: store.unsealed_through(tx, tx.now.date()), readonly=True) == 1
    jobs["ledger_checkpoint"].run()
    assert network.tx(latest, readonly=True).tree_size == 7
    assert_each_sealed_once(network, 7)


def test_a_window_held_back_by_an_old_id_still_lets_the_sealing_job_seal(network, monkeypatch, shop):
    """Once a late entry with an old id is sealed, it is among the last LOOKBACK leaves and holds the
    window's floor back: the window fills with sealed ids, and new entries lie beyond it. A quick pass
    whose window was full searches whole, so the sealing job goes on sealing every 10 s."""
    partner, member = shop
    for i in range(8):
        network.earn(partner, member, f"e{i}", points=10 + i)
    network.seal()
    earn_with_id(network, monkeypatch, shop, "ent_0000late", "late")
    assert network.seal() == 1  # the checkpoint's pass: searched whole
    for i in range(3):
        network.earn(partner, member, f"n{i}", points=20 + i)
    assert network.seal(search_all=False) == 3  # the sealing job's pass: its window was full
    assert network.tx(lambda tx: store.unsealed_through(tx, tx.now.date()), readonly=True) == 0
