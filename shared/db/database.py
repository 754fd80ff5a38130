"""Engines, sessions and the one transaction runner every unit of work goes through.

``Database.run_in_transaction(fn)`` owns begin and commit. It retries the whole
unit on serialization failures, deadlocks, SQLite's busy database, unique
violations raised by a concurrent twin (the retry then finds the twin's row) and
errors that carry a ``retry_from`` instant the clock has reached (a write into a
cycle closed at midnight while the unit ran: the retry, at a fresh time, posts
into the open cycle), so no such error reaches a caller. Services and endpoints
never commit themselves.
On SQLite a write unit first waits for its turn at the one write lock, in order of
arrival within the process (shared/db/writer_queue.py), and reads the network's
time (``tx.now``) only once it has its turn; a writer out of patience is retried
like a busy database.
"""

from __future__ import annotations

import logging
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from shared.clock import Clock, SystemClock
from shared.config import ConfigurationError, Settings
from shared.db.writer_queue import TurnTimeout, WriterQueue

log = logging.getLogger("pointsnet.db")
T = TypeVar("T")

RETRYABLE_PG = {"40001", "40P01"}
SQLITE_BUSY_TIMEOUT_MS = 60_000  # how long a SQLite writer waits for the write lock
UNIQUE_PG = "23505"


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername.startswith("postgres+"):  # SQLAlchemy knows the dialect only as postgresql
        parsed = parsed.set(drivername="postgresql+" + parsed.drivername.partition("+")[2])
    return parsed.render_as_string(hide_password=False)


class DatabaseNotMade(ConfigurationError):
    """The embedded SQLite database is missing, and this process creates none (it only reads)."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for another database or an in-memory one."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:" \
            or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def require_existing(url: str, variable: str) -> None:
    """For a process that only reads: a SQLite database file that is not there is a configuration error
    (DatabaseNotMade) naming the file and ``variable``, the setting that chose it — never a new, empty
    database created and answered from (a mistyped POINTSNET_DATA_DIR would read as an empty network)."""
    path = sqlite_file(url)
    try:
        if path is None or path.exists():
            return
        there = next((folder for folder in path.absolute().parents if folder.exists()), None)
    except OSError as exc:  # a name longer than the file system allows
        raise DatabaseNotMade(f"{variable}: cannot look for the SQLite database {path} ({exc.strerror or exc})") \
            from None
    if there is not None and not there.is_dir():  # as a writer would find it (make_engine)
        raise DatabaseNotMade(f"{variable}: {there} is not a directory for the SQLite database (a file is in "
                              "the way)")
    what = "the network's data directory" if variable == "POINTSNET_DATA_DIR" else "the network's database"
    raise DatabaseNotMade(f"the network's database {path.absolute()} does not exist, and a command that only "
                          f"reads creates no database: is {variable} {what}?")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            directory = Path(parsed.database).parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a file in its place, a read-only mount, no permission
                reason = "a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError)) else (
                    exc.strerror or exc)
                raise ConfigurationError(f"POINTSNET_DATA_DIR: cannot create {directory} for the SQLite database "
                                         f"({reason})") from None
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            isolation_level=None,  # we emit BEGIN ourselves (below)
            pool_size=pool_size, max_overflow=pool_size,
            hide_parameters=True,  # an error's text, logged, names no value (a customer_ref, a contact)
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA secure_delete=ON")  # erased personal data is zeroed, not left in free space
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Writers take SQLite's write lock up front so two writers never deadlock
            # upgrading read locks; read-only units use a deferred BEGIN.
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True,
                         hide_parameters=True)


def _pgcode(exc: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error: wrapped by SQLAlchemy, or raw from psycopg (the journal's
    pipelined and COPY writes use the driver's connection, so their errors arrive unwrapped)."""
    raw = _driver_error(exc)
    return getattr(raw, "sqlstate", None) or getattr(raw, "pgcode", None)


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's own error: wrapped by SQLAlchemy, or raw (pipelined and COPY writes)."""
    return exc.orig if isinstance(exc, DBAPIError) else exc


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, TurnTimeout):  # as SQLite's busy database: try again, at the back of the queue
        return True
    if _pgcode(exc) in RETRYABLE_PG:
        return True
    if isinstance(exc, DBAPIError):
        message = str(exc.orig).lower()
        if isinstance(exc, OperationalError) and ("database is locked" in message or "busy" in message):
            return True
    return False


def violated_key(exc: BaseException) -> str | None:
    """Which key a unique violation names, where the database says (PostgreSQL's detail: ``Key
    (partner_id, reference)=(ptn_…, ref-122) already exists.``); None where it does not (SQLite)."""
    diag = getattr(_driver_error(exc), "diag", None)
    return getattr(diag, "message_detail", None) or None


def is_unique_violation(exc: BaseException) -> bool:
    if _pgcode(exc) == UNIQUE_PG:
        return True
    return isinstance(exc, IntegrityError) and "unique constraint failed" in str(exc.orig).lower()


@dataclass
class Tx:
    """What a unit of work gets: its session, the network time it runs at, and settings."""

    session: Session
    now: datetime
    settings: Settings
    dialect: str
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # Operator alerts raised by this unit; recorded in their own transaction when it ends,
    # committed or not (see shared/alerts.py).
    alerts: list[dict] = field(default_factory=list)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"


class Database:
    def __init__(self, settings: Settings, *, url: str | None = None, clock: Clock | None = None, pool_size: int = 10):
        self.settings = settings
        self.url = normalise_url(url or settings.resolved_database_url)
        self.pool_size = pool_size
        self.engine = make_engine(self.url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name
        self.clock = clock or SystemClock()
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        # A read-only unit sees one snapshot: SQLite's deferred read transaction does, and on
        # PostgreSQL REPEATABLE READ (a report reads which cycles are rolled up, then their rows).
        reader_bind = self.engine.execution_options(
            **({"sqlite_begin": "DEFERRED"} if self.dialect == "sqlite" else {"isolation_level": "REPEATABLE READ"}))
        self._reader = sessionmaker(reader_bind, expire_on_commit=False)
        self._reader_bind = reader_bind
        # SQLite has one write lock: this process's writers take turns at it in order of arrival.
        self._write_turns = WriterQueue() if self.dialect == "sqlite" else None

    def run_in_transaction(self, fn: Callable[[Tx], T], *, readonly: bool = False, attempts: int = 12) -> T:
        """Run ``fn`` in one transaction, committing once; retry the whole unit on transient conflicts."""
        unique_seen: list[str | None] = []  # the keys the unit's unique violations named, in order
        for attempt in range(1, attempts + 1):
            session = (self._reader if readonly else self._writer)()
            tx = None
            try:
                with self._turn(readonly):
                    # the time once the turn is this unit's: one that waited for it never posts
                    # at a time older than that of a unit that wrote before it
                    tx = Tx(session=session, now=self.clock.now(), settings=self.settings, dialect=self.dialect)
                    with session.begin():
                        result = fn(tx)
            except Exception as exc:
                retry = is_retryable(exc) or self._is_past(getattr(exc, "retry_from", None))
                if not retry and is_unique_violation(exc):
                    # a concurrent twin committed the row first: the retry finds it. Two such violations
                    # are retried whatever they name; beyond that only one naming a key not met before
                    # (units that share many keys, such as batches reusing references, lose to one twin
                    # after another), so a unit that violates the same key each time fails and is seen
                    key = violated_key(exc)
                    retry = len(unique_seen) < 2 or (key is not None and key not in unique_seen)
                    unique_seen.append(key)
                if not retry or attempt == attempts:
                    if tx is not None:  # None: it gave up waiting for its turn, before it ran
                        self._record_alerts(tx)
                    raise
                log.debug("retrying unit of work after %s (attempt %d)", type(exc).__name__, attempt)
                time.sleep(min(0.2, 0.002 * 2 ** attempt) * random.random())
                continue
            finally:
                session.close()
            self._record_alerts(tx)
            for hook in tx.after_commit:
                hook()
            return result
        raise AssertionError("unreachable")

    def _is_past(self, instant: datetime | None) -> bool:
        """An error that a unit run from ``instant`` on does not meet (its ``retry_from``: a write into
        a cycle that ended while the unit ran) is retried once the network's clock has reached it."""
        return instant is not None and self.clock.now() >= instant

    def _turn(self, readonly: bool):
        return nullcontext() if readonly or self._write_turns is None else self._write_turns.turn()

    def write_turn(self):
        """This process's turn at SQLite's write lock, for the rare write outside a unit of work
        (a WAL checkpoint); on PostgreSQL nothing."""
        return self._turn(readonly=False)

    def ping(self) -> None:
        """Readiness: one read of the database (on SQLite from its header, without the write lock)."""
        with self._reader_bind.connect() as connection:
            connection.execute(text("PRAGMA schema_version" if self.dialect == "sqlite" else "SELECT 1"))

    def _record_alerts(self, tx: Tx) -> None:
        if not tx.alerts:
            return
        from shared.alerts import record_alerts

        day = tx.now.astimezone(self.settings.zone).date().isoformat()
        self.run_in_transaction(lambda inner: record_alerts(inner.session, inner.now, day, tx.alerts))

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:  # never print credentials
        return f"Database({make_url(self.url).render_as_string(hide_password=True)})"


def open_database(settings: Settings, **kwargs: Any) -> Database:
    return Database(settings, **kwargs)
