"""A migration that stops (0041 on partners whose names are one name) is one line from `pointsnet db
upgrade`, exit 1 (the data stops it, not the command), not a traceback; and it leaves the database at the revision the upgrade started
from, on SQLite too (where each migration used to commit on its own: a stop at 0041 left 0040, which
the previous release refuses as newer)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from shared.db.database import normalise_url
from shared.db.migrate import MigrationStopped, current_revision, upgrade
from tests.cli.inprocess import pointsnet
from tests.db.migrating import downgrade


@pytest.fixture
def twins(database_url):
    """The database at 0039 with two partners whose names are one name by 0041's rule."""
    downgrade(database_url, "0039")
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO partners (id, name, status, created_at) VALUES "
                                    "('ptn_a', 'AirLink', 'active', '2026-11-20 00:00:00'), "
                                    "('ptn_b', 'airlink ', 'active', '2026-11-20 00:00:00')"))
        yield database_url
    finally:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM partners"))
        engine.dispose()
        upgrade(database_url)  # the next test's database, also when this one fails


def _columns(url: str, table: str) -> list[str]:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            return [column["name"] for column in inspect(connection).get_columns(table)]
    finally:
        engine.dispose()


def test_a_stop_leaves_the_database_at_the_revision_it_started_from(twins):
    with pytest.raises(MigrationStopped) as stopped:
        upgrade(twins)
    assert "migration 0041 stopped, nothing changed" in str(stopped.value)
    assert current_revision(twins) == "0039"  # not 0040: the previous release still runs on it
    assert "pauses" not in _columns(twins, "webhook_endpoints")


def test_db_upgrade_says_a_stop_in_one_line(twins, tmp_path):
    done = pointsnet("db", "upgrade", env={"POINTSNET_DATA_DIR": str(tmp_path / "data"),
                                           "POINTSNET_DATABASE_URL": twins})
    assert done.returncode == 1, done.stderr[-600:]
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr[-600:]
    assert "migration 0041 stopped, nothing changed" in done.stderr and "ptn_a 'AirLink'" in done.stderr
    assert current_revision(twins) == "0039"
