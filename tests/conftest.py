"""Test fixtures: a migrated database per run (SQLite by default, PostgreSQL when
POINTSNET_TEST_DATABASE_URL is set — unreachable PostgreSQL then fails, never skips),
and a fresh network per test with a fixed clock."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.util import LRUCache

from shared.clock import FixedClock
from shared.config import Settings, get_settings
from shared.db.database import normalise_url
from shared.db.migrate import upgrade
from shared.models import Base
from shared.network import Network

# Hypothesis: no per-example deadline anywhere (a scheduler stall on a loaded 2-core machine is not a
# failure of the code under test). In CI (`CI` set, as .ci/run does) the examples are derandomized and
# no example database is kept, like Hypothesis' own "ci" profile, so a run of main is repeatable; a
# developer's runs keep exploring new examples.
_IN_CI = bool(os.environ.get("CI"))
hypothesis_settings.register_profile("pointsnet", deadline=None, derandomize=_IN_CI,
                                     **({"database": None} if _IN_CI else {}))
hypothesis_settings.load_profile("pointsnet")


def _per_worker(url: str | None) -> str | None:
    """Under pytest-xdist each worker gets its own PostgreSQL database (created when missing)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    from sqlalchemy.engine import make_url

    base = make_url(normalise_url(url))
    name = f"{base.database}_{worker}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # a connection error here fails the run on purpose
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


class _CompiledStatements:
    """One compiled-statement cache for every engine of a test process. SQLAlchemy keys its cache by the
    dialect object, one per engine, and the tests make an engine per test (a ``Network`` each): every
    test compiled every statement it ran afresh, about a tenth of the suite's time. Dialects of one
    class on one server version compile a statement alike, so here they share it (the key's other
    parts, the statement's own cache key among them, are SQLAlchemy's unchanged)."""

    def __init__(self, size: int = 20_000):
        self._compiled = LRUCache(size)

    @staticmethod
    def _key(key: tuple) -> tuple:
        dialect = key[0]
        return (type(dialect), dialect.server_version_info, *key[1:])

    def get(self, key, default=None):
        return self._compiled.get(self._key(key), default)

    def __setitem__(self, key, compiled) -> None:
        self._compiled[self._key(key)] = compiled


_COMPILED = _CompiledStatements()


@event.listens_for(Engine, "engine_connect")
def _share_compiled_statements(connection) -> None:
    connection.execution_options(compiled_cache=_COMPILED)


PG_URL = _per_worker(os.environ.get("POINTSNET_TEST_DATABASE_URL") or None)  # set but empty: SQLite
START = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)  # 10:00 in Asia/Shanghai


def pytest_report_header(config):
    return f"pointsnet database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (set POINTSNET_TEST_DATABASE_URL for PostgreSQL)'}"


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject's addopts): one worker more than the machine has cores. A test waits about
    half its time (on the database, a subprocess it started, a socket, a browser), so with one worker
    per core the cores sit idle that half: on 2 cores, 3 workers ran the suite 15-20 % faster than 2."""
    return (os.cpu_count() or 1) + 1


def pytest_addoption(parser):
    parser.addoption("--database-tests-only", action="store_true",
                     help="run only the tests that touch the database under test: CI's PostgreSQL pass, "
                          "after a SQLite pass that ran every test")


def touches_the_database(item) -> bool:
    """Whether a test's outcome can depend on which database the run uses: it is given a migrated
    database (every such fixture here rests on ``template_db``), is marked ``postgres``, or its module,
    or the module of one of its fixtures (another conftest's), reads ``PG_URL`` to choose what it does.
    The others (pure functions, files, configuration, commands on their own embedded SQLite) run the
    same whatever POINTSNET_TEST_DATABASE_URL says."""
    return ("template_db" in item.fixturenames or "postgres" in item.keywords
            or hasattr(getattr(item, "module", None), "PG_URL")
            or any(fixture.func.__module__ != __name__ and hasattr(sys.modules.get(fixture.func.__module__), "PG_URL")
                   for fixtures in item._fixtureinfo.name2fixturedefs.values() for fixture in fixtures))


def pytest_collection_modifyitems(config, items):
    if config.getoption("--database-tests-only"):
        config.hook.pytest_deselected(items=[item for item in items if not touches_the_database(item)])
        items[:] = [item for item in items if touches_the_database(item)]
    if PG_URL:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set POINTSNET_TEST_DATABASE_URL")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> str:
    """Migrate once per test session."""
    if PG_URL:
        engine = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:  # a connection error here fails the run on purpose
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        upgrade(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return str(path)


NETWORK_ACCOUNTS = ("network:expired", "network:promotions", "network:adjustments")  # seeded by migration 0001
_reset_engines: dict = {}


def _reset_postgres(url: str) -> None:
    """Put the migrated database back as ``upgrade`` leaves it: every table empty but for the network
    accounts. DELETE, children first, from the tables that hold rows: on the few rows a test writes
    that is many times faster than a TRUNCATE of every table, which replaces each table's files."""
    engine = _reset_engines.get(url)
    if engine is None:
        engine = _reset_engines[url] = create_engine(normalise_url(url), pool_size=1, pool_pre_ping=True)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    holding = " UNION ALL ".join(f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in tables)
    with engine.begin() as conn:
        filled = {row[0] for row in conn.execute(text(holding))} | {"accounts"}
        for name in tables:
            if name in filled:
                conn.execute(text(f"DELETE FROM {name}"))
        conn.execute(text("INSERT INTO accounts (id, kind) VALUES "
                          + ", ".join(f"('{account}', 'network')" for account in NETWORK_ACCOUNTS)))


@pytest.fixture
def database_url(template_db, tmp_path) -> str:
    """A clean, migrated database for this test."""
    if PG_URL:
        _reset_postgres(PG_URL)
        return PG_URL
    path = tmp_path / "pointsnet.db"
    shutil.copyfile(template_db, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(tmp_path) -> Settings:
    # the tests' webhook receivers listen on 127.0.0.1: an operator's explicit allowance
    return Settings(data_dir=Path(tmp_path) / "data", webhook_allow_private_targets=True)


@pytest.fixture(autouse=True)
def _settings_read_afresh():
    """``get_settings`` is cached per process; a test that sets POINTSNET_* and runs a command in
    process must not get an earlier test's settings (nor leave its own to the next)."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def network(settings, database_url, clock):
    net = Network(settings, database_url=database_url, clock=clock, pool_size=40)
    yield net
    net.close()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless chromium driven by Playwright. CI (POINTSNET_REQUIRE_BROWSER=1) fails
    without it; elsewhere the browser tests skip."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("POINTSNET_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield launched
        launched.close()
