"""On PostgreSQL a migration that waits for a table's lock (0041's ALTER TABLE partners behind a long
transaction that read partners: a settlement run, a report) queued every partner request behind it,
for as long as that transaction lasted. The upgrade now waits at most its lock timeout, tries again,
and then stops in one line naming the table, having changed nothing."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text

from shared.db import migrate
from shared.db.database import normalise_url
from shared.db.migrate import current_revision, upgrade
from tests.cli.inprocess import pointsnet
from tests.db.migrating import downgrade

pytestmark = pytest.mark.postgres


@pytest.fixture
def held_partners(database_url, monkeypatch):
    """The database at 0040 and a transaction that has read partners and stays open (its ACCESS SHARE
    lock holds off 0041's ALTER TABLE); the runner's lock timeout short, for the test."""
    monkeypatch.setattr(migrate, "LOCK_TIMEOUT", 0.5, raising=False)
    monkeypatch.setattr(migrate, "LOCK_RETRY_PAUSE", 0.3, raising=False)
    downgrade(database_url, "0040")
    engine = create_engine(normalise_url(database_url))
    holder = engine.connect()
    holder.execute(text("SELECT count(*) FROM partners"))  # a report's read: the transaction stays open
    try:
        yield database_url, holder
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()
        upgrade(database_url)  # the next test's database, also when this one fails


def _in_thread(fn) -> tuple[threading.Thread, list]:
    result: list = []

    def run():
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_an_upgrade_that_cannot_lock_a_table_stops_in_one_line_and_changes_nothing(held_partners, tmp_path):
    url, holder = held_partners
    started = time.monotonic()
    thread, result = _in_thread(lambda: pointsnet("db", "upgrade", env={"POINTSNET_DATA_DIR": str(tmp_path / "data"),
                                                                       "POINTSNET_DATABASE_URL": url}))
    thread.join(30)
    waited = thread.is_alive()
    holder.rollback()  # lets an upgrade that still waits go on
    thread.join(30)
    assert not waited, "the upgrade waited for the lock on partners as long as the transaction held it"
    [done] = result
    assert time.monotonic() - started < 10
    assert done.returncode == 1, done.stderr[-600:]  # the system (a lock held), not the command: docs/operations.md, "Exit status"
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr[-600:]
    assert "migration 0041 could not lock table partners within 0.5 s (3 tries): a long transaction holds it" \
        in done.stderr and "nothing changed: run the upgrade again" in done.stderr, done.stderr
    assert current_revision(url) == "0040"


def test_an_upgrade_goes_on_once_the_transaction_that_held_the_lock_ends(held_partners):
    url, holder = held_partners
    thread, result = _in_thread(lambda: upgrade(url))
    time.sleep(0.7)  # the first try has timed out
    holder.rollback()
    thread.join(30)
    assert not thread.is_alive() and result == [None], result
    assert current_revision(url) != "0040"
