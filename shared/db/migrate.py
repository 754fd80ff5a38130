"""Apply Alembic migrations programmatically (``pointsnet db upgrade``, ``pointsnet serve``).

The migrations of one upgrade run in one transaction, on PostgreSQL and on SQLite: a migration that
stops leaves the database at the revision the upgrade started from. On PostgreSQL a migration waits
at most ``LOCK_TIMEOUT`` seconds for a table's lock (a long transaction that read the table holds
it, and every request that reads the table would queue behind the waiting migration); the upgrade is
then rolled back and tried again, ``LOCK_ATTEMPTS`` times in all, before it stops in one line.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.db.database import make_engine, normalise_url
from shared.errors import PointsnetError

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_TIMEOUT = 5.0  # seconds a migration waits for a table's lock on PostgreSQL
LOCK_ATTEMPTS = 3
LOCK_RETRY_PAUSE = 2.0  # seconds between attempts: the requests that queued behind the wait go through
LOCK_NOT_AVAILABLE = "55P03"


class MigrationStopped(PointsnetError):
    """A migration refused to run on what the database holds (its message says what to do), or could
    not take a lock: the upgrade was rolled back, the database is at the revision it started from."""

    status, code, title = 503, "migration_stopped", "Migration stopped"


class MigrationLockTimeout(MigrationStopped):
    code = "migration_lock_timeout"


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
            postgres = connection.dialect.name == "postgresql"
            if postgres:
                # Several processes may start at once: one migrates, the others wait.
                connection.execute(text("SELECT pg_advisory_lock(7242001)"))
                connection.execute(text("SELECT set_config('lock_timeout', :ms, false)"),
                                   {"ms": f"{round(LOCK_TIMEOUT * 1000)}ms"})
                connection.commit()
            config = alembic_config(url)
            _known(ScriptDirectory.from_config(config), MigrationContext.configure(connection).get_current_revision())
            connection.rollback()  # ends the read's transaction: the migrations run in their own
            config.attributes["connection"] = connection
            for attempt in range(1, LOCK_ATTEMPTS + 1):
                try:
                    command.upgrade(config, revision)
                    connection.commit()
                    break
                except DBAPIError as exc:
                    connection.rollback()
                    if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                        raise
                    if attempt == LOCK_ATTEMPTS:
                        raise MigrationLockTimeout(_lock_timeout_message(exc)) from None
                    time.sleep(LOCK_RETRY_PAUSE)
            if postgres:
                connection.execute(text("SELECT pg_advisory_unlock(7242001)"))
                connection.execute(text("RESET lock_timeout"))
                connection.commit()
    finally:
        engine.dispose()


_LOCKING = re.compile(r"^\s*(?:ALTER TABLE|LOCK TABLE|DROP TABLE|UPDATE|DELETE FROM|INSERT INTO|TRUNCATE|"
                      r"CREATE (?:UNIQUE )?INDEX(?: CONCURRENTLY)?(?: IF NOT EXISTS)? \S+ ON)"
                      r"\s+(?:ONLY\s+)?(?:IF EXISTS\s+)?\"?([\w.]+)", re.IGNORECASE)


def _lock_timeout_message(exc: DBAPIError) -> str:
    """One line: which migration waited for which table's lock, and what to do."""
    migration = None  # the migration whose statement waited: the innermost frame of a migration's module
    trace = exc.__traceback__
    while trace is not None:
        if Path(trace.tb_frame.f_code.co_filename).parent == MIGRATIONS / "versions":
            migration = trace.tb_frame.f_globals.get("revision", migration)
        trace = trace.tb_next
    table = _LOCKING.match(exc.statement or "")
    what = f"table {table.group(1)}" if table else "a table"
    seconds = f"{LOCK_TIMEOUT:g}"
    return (f"{'migration ' + migration if migration else 'the upgrade'} could not lock {what} within {seconds} s "
            f"({LOCK_ATTEMPTS} tries): a long transaction holds it (pg_stat_activity shows it); nothing changed: "
            "run the upgrade again")


def current_revision(url: str) -> str | None:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            # a read: on SQLite never BEGIN IMMEDIATE (a writer's), which would wait behind a busy writer
            connection.execution_options(sqlite_begin="DEFERRED")
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def is_current(url: str) -> bool:
    """Whether the database is at the newest migration (SchemaNewerThanRelease if it is past it)."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return _known(script, current_revision(url)) == script.get_current_head()
