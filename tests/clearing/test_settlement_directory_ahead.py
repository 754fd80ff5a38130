"""A database restored from a backup older than the settlement files (found by the backup-and-restore
review): the cycle the files settled is not settled in the restored database, and the settlement job,
which runs at every start, settled it again with the ledger it had — other figures — and replaced the
signed directory partners had already fetched. Now a directory that is there is replaced only by the
same manifest (an earlier attempt of this settlement); any other refuses the cycle, writing nothing."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.models import Alert, SettlementRun
from shared.network import Network
from shared.reports.delivery import publish_due
from shared.ledger.verify import verify
from shared.settlement.runs import SettlementDirectoryAhead
from tests.cli.inprocess import pointsnet
from tests.conftest import PG_URL
from tests.factories import make_member, make_partner, verify_ok

POSTPAID = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
CYCLE = date(2026, 11, 20)


def files_of(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def copy_database(source: str, target: str) -> None:
    """SQLite's online backup, as docs/operations.md tells an operator to take one."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


@pytest.mark.skipif(bool(PG_URL), reason="restores a SQLite file; the refusal reads the data directory, "
                                          "not the database")
def test_a_database_behind_its_settlement_files_settles_nothing_and_keeps_them(network, clock, database_url,
                                                                                settings, tmp_path):
    coffee, book = make_partner(network, "CoffeeCo", **POSTPAID), make_partner(network, "BookMart", **POSTPAID)
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "e1", points=500)
    network.burn(book, member, "b1", 200)
    path = database_url.removeprefix("sqlite:///")
    backup = str(tmp_path / "backup.db")
    copy_database(path, backup)
    network.earn(coffee, member, "e2", points=777)  # acknowledged to the partner after the backup
    clock.advance(days=1)
    network.settle(CYCLE)
    publish_due(network)
    directory = settings.data_dir / "settlements" / CYCLE.isoformat()
    published = files_of(directory)
    report_set = files_of(settings.data_dir / "reports" / "cycles" / CYCLE.isoformat())

    network.close()
    copy_database(backup, path)  # the operator restores the older backup; the data directory stays
    restored = Network(settings, database_url=database_url, clock=clock, pool_size=4)
    try:
        with pytest.raises(SettlementDirectoryAhead, match="not settled in the database"):
            restored.settle(CYCLE)
        with pytest.raises(SettlementDirectoryAhead):
            restored.settle_due()  # the job's path, run at every start
        assert files_of(directory) == published  # what partners fetched is still there, unchanged
        assert not [p for p in directory.parent.iterdir() if p.name.startswith(".")]  # no staging left
        assert restored.tx(lambda tx: tx.session.execute(select(SettlementRun)).all(), readonly=True) == []
        alerts = restored.tx(lambda tx: tx.session.execute(
            select(Alert.kind, Alert.count).where(Alert.kind == "settlement_directory_ahead")).all(), readonly=True)
        assert alerts == [("settlement_directory_ahead", 2)]
        report = restored.tx(verify, readonly=True)
        assert [(o.check, o.subject) for o in report.offences] == [("settlement_directory_ahead", "2026-11-20"),
                                                                   ("report_set_ahead", "2026-11-20")]
        publish_due(restored)
        assert files_of(settings.data_dir / "reports" / "cycles" / CYCLE.isoformat()) == report_set
    finally:
        restored.close()


def test_an_earlier_attempt_of_the_same_settlement_is_still_replaced(network, clock, settings, monkeypatch):
    """A run whose files were renamed into place and whose unit then failed is retried: the same manifest,
    byte for byte, so the directory is replaced and the cycle settles once."""
    coffee, book = make_partner(network, "CoffeeCo", **POSTPAID), make_partner(network, "BookMart", **POSTPAID)
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "e1", points=500)
    network.burn(book, member, "b1", 200)
    clock.advance(days=1)
    import shared.settlement.runs as runs

    real = runs.record_settlement_ready

    def fails_after_the_files(*args, **kwargs):
        raise RuntimeError("the unit fails after the files were renamed into place")

    monkeypatch.setattr(runs, "record_settlement_ready", fails_after_the_files)
    with pytest.raises(RuntimeError):
        network.settle(CYCLE)
    directory = settings.data_dir / "settlements" / CYCLE.isoformat()
    first = files_of(directory)
    monkeypatch.setattr(runs, "record_settlement_ready", real)
    assert network.settle(CYCLE)["already_settled"] is False
    assert files_of(directory) == first
    verify_ok(network)


def test_a_directory_without_a_manifest_is_not_replaced(network, clock, settings, database_url):
    coffee = make_partner(network, "CoffeeCo", **POSTPAID)
    network.earn(coffee, make_member(network, coffee), "e1", points=500)
    clock.advance(days=1)
    directory = settings.data_dir / "settlements" / CYCLE.isoformat()
    directory.mkdir(parents=True)
    (directory / "notes.txt").write_text("an operator's own file")
    with pytest.raises(SettlementDirectoryAhead, match="files without a manifest"):
        network.settle(CYCLE)
    done = pointsnet("clearing", "run", "--cycle", CYCLE.isoformat(), env={
        "POINTSNET_DATA_DIR": str(settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
        "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")})
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: settlement_directory_ahead: cycle 2026-11-20 is not settled"), done.stderr
    assert files_of(directory) == {"notes.txt": b"an operator's own file"}


def test_verify_names_the_report_sets_of_periods_the_database_has_not_settled(network, clock, settings):
    coffee = make_partner(network, "CoffeeCo", **POSTPAID)
    network.earn(coffee, make_member(network, coffee), "e1", points=500)
    clock.advance(days=1)
    network.settle(CYCLE)
    reports = settings.data_dir / "reports"
    for name in ("cycles/2026-11-20", "cycles/2026-11-21", "monthly/2026-11", "monthly/notes", "cycles/.staged-x"):
        (reports / name).mkdir(parents=True)
        (reports / name / "index.json").write_text("{}")
    (reports / "cycles" / "2026-11-19").mkdir()  # no index: not a published set
    report = network.tx(verify, readonly=True)
    assert [(o.check, o.subject) for o in report.offences] == [("report_set_ahead", "2026-11-21"),
                                                               ("report_set_ahead", "2026-11")]
