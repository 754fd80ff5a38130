"""Apply Alembic migrations programmatically (``pointsnet db upgrade``, ``pointsnet serve``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text

from shared.db.database import make_engine, normalise_url
from shared.errors import PointsnetError

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaNewerThanRelease(PointsnetError):
    """The database was migrated by a later release (an operator rolling back, a host still on the
    previous release): this release neither upgrades it nor works on it."""

    status, code, title = 503, "schema_newer_than_release", "Database schema newer than this release"


def _known(script: ScriptDirectory, revision: str | None) -> str | None:
    """``revision`` if this release's migrations know it; SchemaNewerThanRelease otherwise."""
    try:
        if revision is not None:
            script.get_revision(revision)
    except CommandError:
        raise SchemaNewerThanRelease(
            f"the database schema (revision {revision}) is newer than this release (whose newest is "
            f"{script.get_current_head()}): run the release that migrated it, or a later one") from None
    return revision


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # Several processes may start at once: one migrates, the others wait.
                connection.execute(text("SELECT pg_advisory_lock(7242001)"))
                connection.commit()
            config = alembic_config(url)
            _known(ScriptDirectory.from_config(config), MigrationContext.configure(connection).get_current_revision())
            connection.rollback()  # ends the read's transaction: the migrations run in their own
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(7242001)"))
                connection.commit()
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def is_current(url: str) -> bool:
    """Whether the database is at the newest migration (SchemaNewerThanRelease if it is past it)."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return _known(script, current_revision(url)) == script.get_current_head()
