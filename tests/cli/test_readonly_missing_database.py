"""A command that only reads never creates the embedded database. Pointed at a mistyped data directory
(POINTSNET_DATA_DIR naming a directory that holds no network, no POINTSNET_DATABASE_URL), it created and
migrated an empty SQLite database there and answered as if the network were empty: "0" figures, a clean
reconcile. It says in one line which file it looked for and exits 2 instead, as it does for a missing
key (docs/operations.md, "Keys"); a command that writes still creates the database on first start."""

from __future__ import annotations

import json

import pytest

from tests.cli.inprocess import pointsnet

# every command that opens the network only to read, with arguments it accepts (names need not exist:
# the database is looked for before anything is read)
READ_ONLY = (
    ("verify",), ("verify", "--json"), ("reports", "network", "--from", "2026-11-01", "--to", "2026-11-30"),
    ("reports", "partner", "ptn_x", "--from", "2026-11-01", "--to", "2026-11-30"),
    ("clearing", "list"), ("clearing", "float", "ptn_x"), ("clearing", "exposure", "--json"),
    ("clearing", "calendar", "list"), ("members", "show", "mem_x"), ("members", "status-counts"),
    ("alerts", "list"), ("partners", "list"), ("partners", "keys", "list", "ptn_x"), ("rules", "show", "--network"),
    ("rules", "check"), ("users", "list"), ("webhooks", "show", "ptn_x"), ("webhooks", "deliveries"),
    ("webhooks", "show-delivery", "whd_x"), ("db", "current"),
)


def embedded(data_dir, *args):
    """``pointsnet ARGS`` on the embedded SQLite default of ``data_dir``."""
    return pointsnet(*args, env={"POINTSNET_DATA_DIR": str(data_dir), "POINTSNET_DATABASE_URL": None})


def refused(done, database) -> bool:
    return (done.returncode == 2 and done.stdout == "" and len(done.stderr.strip().splitlines()) == 1
            and "Traceback" not in done.stderr and str(database) in done.stderr.replace("\n", "")
            and "POINTSNET_DATA_DIR" in done.stderr)


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_read_only_command_on_a_mistyped_data_directory_creates_nothing(tmp_path, args):
    mistyped = tmp_path / "pointsnet-dta"
    done = embedded(mistyped, *args)
    assert refused(done, mistyped / "pointsnet.db"), (done.returncode, done.stdout, done.stderr)
    assert not mistyped.exists()


def test_reconcile_on_a_mistyped_data_directory_creates_nothing(tmp_path):
    """reconcile reads a settlement directory that is there, and the ledger, which is not."""
    directory = tmp_path / "settlements" / "2026-11-20"
    directory.mkdir(parents=True)
    mistyped = tmp_path / "dta"
    done = embedded(mistyped, "reconcile", str(directory))
    assert refused(done, mistyped / "pointsnet.db"), (done.returncode, done.stdout, done.stderr)
    assert not mistyped.exists()


def test_a_directory_that_is_there_but_holds_no_network_is_left_as_it_was(tmp_path):
    """The directory exists (another tool's, an empty mount point): nothing is written into it."""
    elsewhere = tmp_path / "mnt"
    elsewhere.mkdir()
    done = embedded(elsewhere, "users", "list")
    assert refused(done, elsewhere / "pointsnet.db"), (done.returncode, done.stdout, done.stderr)
    assert list(elsewhere.iterdir()) == []


def test_a_writing_command_still_creates_the_database_and_the_readers_then_read_it(tmp_path):
    data = tmp_path / "data"
    added = embedded(data, "partners", "add", "CoffeeCo", "--billing", "prepaid")
    assert added.returncode == 0, added.stderr
    assert (data / "pointsnet.db").exists()
    listed = embedded(data, "partners", "list")
    assert listed.returncode == 0 and "CoffeeCo" in listed.stdout, listed.stderr
    partner = json.loads(added.stdout)["partner_id"]
    shown = embedded(data, "clearing", "float", partner)
    assert shown.returncode == 0, shown.stderr


def test_an_explicit_sqlite_url_to_a_missing_file_names_that_variable(tmp_path):
    missing = tmp_path / "nowhere" / "ledger.db"
    done = pointsnet("members", "status-counts", env={"POINTSNET_DATA_DIR": str(tmp_path / "data"),
                                                      "POINTSNET_DATABASE_URL": f"sqlite:///{missing}"})
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert str(missing) in done.stderr and "POINTSNET_DATABASE_URL" in done.stderr, done.stderr
    assert not missing.parent.exists()


def test_a_data_directory_name_too_long_to_look_up_is_one_line(tmp_path):
    done = embedded(tmp_path / ("x" * 300), "partners", "list")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("configuration error: POINTSNET_DATA_DIR: "), done.stderr
