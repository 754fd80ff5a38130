"""On SQLite an erasure's old page images — the erased ciphertexts — stay in the WAL until a checkpoint
empties it, and the checkpoint waits for every reader still on an older snapshot while it holds the write
lock. It waited SQLite's whole busy timeout (a minute) behind a long read (a ``verify``, a report): every
write of the network stalled that long, and when the reader outlasted it the erasure reported success with
the ciphertexts still on disk. It now waits a moment, and a checkpoint that could not empty the WAL is
flagged and retried by the job runner each minute until it does."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from services.clearing.jobs import ledger_jobs
from shared.models import Member
from tests.conftest import PG_URL
from tests.factories import make_partner

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="SQLite's WAL")


def wal_and_database(database_url: str) -> bytes:
    path = Path(database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_an_erasure_behind_a_long_read_is_emptied_from_the_wal_by_the_job_runner(network, database_url, caplog):
    partner = make_partner(network)
    member = network.enrol(partner, phone="+8613912345678")["member_id"]
    sealed = network.tx(lambda tx: tx.session.get(Member, member).phone_ct, readonly=True).encode()
    reader = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM members").fetchone()  # a long read's snapshot, before the erasure
        with caplog.at_level(logging.WARNING, logger="pointsnet.jobs"):
            network.erase_member(member)  # it commits; the checkpoint gives up on the reader after a moment
        assert network.tx(lambda tx: tx.session.get(Member, member).phone_ct, readonly=True) is None
        assert any("stay in the SQLite WAL while a reader is open" in r.getMessage() for r in caplog.records)
        assert network.retry_forgetting_erased_pages() is False  # the reader is still there
    finally:
        reader.execute("COMMIT")
        reader.close()
    [job] = [job for job in ledger_jobs(network) if job.name == "erased_pages"]
    assert job.run() is True  # the reader gone: emptied
    assert sealed not in wal_and_database(database_url)
    assert job.run() is None  # nothing waits any more


def test_an_erasure_with_no_reader_empties_the_wal_at_once(network, database_url):
    partner = make_partner(network)
    member = network.enrol(partner, phone="+8613912345679")["member_id"]
    sealed = network.tx(lambda tx: tx.session.get(Member, member).phone_ct, readonly=True).encode()
    network.erase_member(member)
    assert sealed not in wal_and_database(database_url)
    assert network.retry_forgetting_erased_pages() is None


class Killed(BaseException):
    """The process killed (SIGKILL, the power lost) right after the erasure committed."""


def test_an_erasure_killed_before_its_checkpoint_is_emptied_from_the_wal_by_the_job_runner(network, database_url,
                                                                                          monkeypatch):
    """The flag that has the job runner empty the WAL was raised only by a checkpoint that could not: a
    process killed between the erasure's commit and its checkpoint left the ciphertexts in the WAL (and,
    with a reader open, in the database file) with no flag and nothing to remove them."""
    partner = make_partner(network)
    member = network.enrol(partner, phone="+8613912345670")["member_id"]
    sealed = network.tx(lambda tx: tx.session.get(Member, member).phone_ct, readonly=True).encode()

    def killed():
        raise Killed()

    with monkeypatch.context() as patched:
        patched.setattr(network, "forget_erased_pages", killed)
        with pytest.raises(Killed):
            network.erase_member(member)
    assert network.tx(lambda tx: tx.session.get(Member, member).phone_ct, readonly=True) is None  # committed
    [job] = [job for job in ledger_jobs(network) if job.name == "erased_pages"]
    assert job.run() is True  # the next process's job runner finishes it
    assert sealed not in wal_and_database(database_url)
    assert job.run() is None


def test_another_processs_job_running_just_before_the_erasure_cannot_lower_its_flag(network, database_url,
                                                                                     monkeypatch):
    """The flag raised before the erasure's unit began could be lowered by another process's job runner
    whose checkpoint ran in between (nothing erased yet, so it found the WAL empty); the process killed
    after the commit then left the ciphertexts with no flag. The flag is now raised inside the unit,
    after its writes."""
    partner = make_partner(network)
    member = network.enrol(partner, phone="+8613912345671")["member_id"]
    sealed = network.tx(lambda tx: tx.session.get(Member, member).phone_ct, readonly=True).encode()
    flag = Path(database_url.removeprefix("sqlite:///") + ".erased-pages")
    real_tx = network.tx

    def other_job_then(fn, **kwargs):  # another process's erased_pages job, just before the unit
        other = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        try:
            busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            other.close()
        if busy == 0:
            flag.unlink(missing_ok=True)
        return real_tx(fn, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(network, "tx", other_job_then)
        patched.setattr(network, "forget_erased_pages", lambda: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            network.erase_member(member)
    [job] = [job for job in ledger_jobs(network) if job.name == "erased_pages"]
    assert job.run() is True
    assert sealed not in wal_and_database(database_url)
