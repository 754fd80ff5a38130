"""A settled cycle whose directory is gone (the data directory lost, or restored older than the
database): the files are deterministic from the ledger and the kept checkpoint, so ``pointsnet
clearing run --cycle D`` writes them again, byte for byte as the run wrote them, and ``pointsnet
verify`` names the cycle until it does. The directory is found under the current data directory,
not at the path the run stored: a data directory moved elsewhere still serves its statements."""

from __future__ import annotations

import json
import shutil
from datetime import date
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import update

from shared.models import SettlementRun
from shared.settlement import runs
from shared.settlement.streaming import write_cycle
from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.factories import make_member, make_partner

POSTPAID = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
PREPAID = dict(billing="prepaid", point_value="0.7", issuance_fee="0.05", redemption_fee_rate="0.05")
FIRST, SECOND = date(2026, 11, 20), date(2026, 11, 21)


def files_of(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


@pytest.fixture
def activity(network, clock, database_url):
    """Two cycles: the design's example with a prepaid partner's capture, then a reversal of a burn of
    the first cycle (an adjustment record) and a quiet partner."""
    coffee = make_partner(network, "CoffeeCo", **POSTPAID)
    book = make_partner(network, "BookMart", **POSTPAID)
    prepaid = make_partner(network, "Prepaid", **PREPAID)
    member = make_member(network, coffee, also_linked_to=(book, prepaid))
    network.earn(coffee, member, "coffee-1", points=500)
    network.earn(prepaid, member, "pre-1", points=101)
    network.burn(book, member, "book-1", 200)
    hold = network.hold(prepaid, member, "pre-h1", 55)
    network.capture(prepaid, hold["hold_id"], 37)
    clock.advance(days=1)
    network.reverse(book, "book-r1", "book-1", 50)
    clock.advance(days=1)
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}
    return {"env": env, "settlements": network.settings.data_dir / "settlements", "book": book}


def pointsnet(activity, *args):
    return run_pointsnet(*args, env=activity["env"])


def test_a_lost_directory_is_written_again_byte_for_byte(network, activity, tmp_path):
    kept = {}
    for cycle in (FIRST, SECOND):
        done = pointsnet(activity, "clearing", "run", "--cycle", cycle.isoformat())
        assert done.returncode == 0, done.stderr
        kept[cycle] = files_of(activity["settlements"] / cycle.isoformat())
    shutil.copytree(activity["settlements"], tmp_path / "backup")
    for cycle in (FIRST, SECOND):
        shutil.rmtree(activity["settlements"] / cycle.isoformat())
    for cycle in (SECOND, FIRST):  # in any order
        done = pointsnet(activity, "clearing", "run", "--cycle", cycle.isoformat())
        assert done.returncode == 0, done.stderr
        assert "written again" in done.stderr, done.stderr
        assert json.loads(done.stdout)["directory"] == str(activity["settlements"] / cycle.isoformat())
        assert files_of(activity["settlements"] / cycle.isoformat()) == kept[cycle]
        assert files_of(tmp_path / "backup" / cycle.isoformat()) == kept[cycle]
        reconciled = pointsnet(activity, "reconcile", str(activity["settlements"] / cycle.isoformat()))
        assert reconciled.returncode == 0, reconciled.stderr
    again = pointsnet(activity, "clearing", "run", "--cycle", FIRST.isoformat())
    assert again.returncode == 0 and "already settled; nothing changed" in again.stderr, again.stderr


def test_verify_names_a_settled_cycle_whose_directory_is_missing(network, activity):
    network.settle(FIRST)
    assert pointsnet(activity, "verify").returncode == 0
    shutil.rmtree(activity["settlements"] / FIRST.isoformat())
    broken = pointsnet(activity, "verify")
    assert broken.returncode == 1, broken.stdout
    assert "settlement_directory_missing" in broken.stderr and FIRST.isoformat() in broken.stderr, broken.stderr
    report = json.loads(pointsnet(activity, "verify", "--json").stdout)
    assert not report["ok"]
    assert [(o["check"], o["subject"]) for o in report["offences"]] == \
        [("settlement_directory_missing", FIRST.isoformat())], report["offences"]
    assert pointsnet(activity, "clearing", "run", "--cycle", FIRST.isoformat()).returncode == 0
    assert pointsnet(activity, "verify").returncode == 0


def test_a_directory_of_an_older_format_is_written_again_in_its_format(network, activity, monkeypatch):
    with monkeypatch.context() as older_release:
        older_release.setattr(runs, "write_cycle", partial(write_cycle, format_version=2))
        network.settle(FIRST)
    directory = activity["settlements"] / FIRST.isoformat()
    kept = files_of(directory)
    assert json.loads(kept["manifest.json"])["format_version"] == 2
    shutil.rmtree(directory)
    done = network.settle(FIRST)
    assert done["already_settled"] and done["rewritten"]
    assert files_of(directory) == kept


def test_a_directory_that_cannot_be_recomputed_is_not_written(network, activity):
    """A run whose manifest the ledger no longer gives (here: the stored digest is another's) is not
    replaced by different files: the command says the directory is missing and how to restore it."""
    network.settle(FIRST)
    directory = activity["settlements"] / FIRST.isoformat()
    shutil.rmtree(directory)
    network.tx(lambda tx: tx.session.execute(update(SettlementRun).where(SettlementRun.cycle_date == FIRST)
                                             .values(manifest_sha256="0" * 64)))
    done = pointsnet(activity, "clearing", "run", "--cycle", FIRST.isoformat())
    assert done.returncode != 0 and done.stderr.strip().count("\n") == 0, (done.returncode, done.stderr)
    assert "settlement_directory_missing" in done.stderr and "restore" in done.stderr, done.stderr
    assert not directory.exists()
    assert not [p for p in activity["settlements"].iterdir() if p.name.startswith(".")]  # no staging left


def test_the_directory_is_found_under_the_current_data_directory(network, activity):
    """A row stored by a run under another data directory (moved since) still finds its files here."""
    network.settle(FIRST)
    network.tx(lambda tx: tx.session.execute(update(SettlementRun).values(
        directory=f"/srv/old-data/settlements/{FIRST.isoformat()}")))
    done = pointsnet(activity, "clearing", "run", "--cycle", FIRST.isoformat())
    assert done.returncode == 0 and "nothing changed" in done.stderr, done.stderr
    assert json.loads(done.stdout)["directory"] == str(activity["settlements"] / FIRST.isoformat())
    assert pointsnet(activity, "verify").returncode == 0

    from shared.settlement import positions
    path = network.tx(lambda tx: positions.settlement_file(tx, FIRST, "network-summary.csv"), readonly=True)
    assert path == (activity["settlements"] / FIRST.isoformat() / "network-summary.csv").resolve()


def test_a_host_that_keeps_no_settlement_files_verifies_without_them(network, activity):
    """A read-only replica's host has the network's keys and no settlement files: its verify checks the
    ledger, not files it never had; with the settlements directory there, a lost cycle is named."""
    network.settle(FIRST)
    kept = activity["settlements"].with_name("settlements-elsewhere")
    activity["settlements"].rename(kept)
    assert pointsnet(activity, "verify").returncode == 0
    activity["settlements"].mkdir()
    missing = pointsnet(activity, "verify")
    assert missing.returncode == 1 and "settlement_directory_missing" in missing.stderr, missing.stderr
