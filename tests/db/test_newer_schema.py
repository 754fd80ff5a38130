"""A database migrated by a newer release (an operator rolling back, a host still on the previous
release): every command says in one line that the schema is newer than this release, and changes
nothing, where `db upgrade` died with alembic's "Can't locate revision" and a traceback and
serve-api and the worker sent the operator to that very command."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from shared.db.database import normalise_url
from tests.cli.inprocess import pointsnet

NEWER = "0999"  # what a later release's migration leaves in alembic_version


@pytest.fixture
def newer_database(database_url):
    engine = create_engine(normalise_url(database_url))
    with engine.begin() as connection:
        known = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": NEWER})
    try:
        yield database_url
    finally:
        with engine.begin() as connection:  # the database is shared by the tests on PostgreSQL
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": known})
        engine.dispose()


@pytest.mark.parametrize("command", [("db", "upgrade"), ("partners", "list"), ("serve-api",), ("worker",),
                                     ("serve-dashboard",)])
def test_a_database_migrated_by_a_newer_release_is_refused_in_one_line(newer_database, tmp_path, monkeypatch,
                                                                         command):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: pytest.fail("served a database this release does not know"))
    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **kw: pytest.fail("served a database this release does not know"))
    done = pointsnet(*command, env={"POINTSNET_DATA_DIR": str(tmp_path / "data"),
                                    "POINTSNET_DATABASE_URL": newer_database})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-600:]  # the system's to fix
    assert done.stderr.strip().count("\n") == 0, done.stderr[-600:]
    assert "newer than this release" in done.stderr and "db upgrade" not in done.stderr, done.stderr
    current = pointsnet("db", "current", env={"POINTSNET_DATABASE_URL": newer_database})
    assert current.stdout.strip() == NEWER  # left as the newer release left it
