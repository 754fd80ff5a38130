"""Run the ``pointsnet`` command inside the test process, the way a shell would run it.

Starting ``python -m services.cli`` costs an interpreter and every import (seconds on a busy CI
machine) for each call, and most command tests are about what a command does, not about the
process. ``pointsnet()`` here runs the same entry point, ``services.cli.main`` (its exit codes
and one-line errors included), with the environment, ``argv`` and standard streams a
subprocess would get, and answers a ``subprocess.CompletedProcess`` like ``subprocess.run``.
What only a real process shows is tested with one in tests/cli/test_process.py.

Between calls nothing carries over: the cached settings are dropped before and after each
call, the networks a command opened are closed, and logging set up by a command is undone.

A command that migrates an embedded SQLite database that does not exist yet (``db upgrade``, or
the first command of a new network) starts from a copy of one database that the real migrations
took to the newest revision once in this test process, and then runs the real ``upgrade``, which
finds it current. Every command test that set up a network ran all the migrations again (about a
twelfth of the suite's time). Migrating an existing database is unchanged, and the migrations
themselves are tested in tests/db, and by the real processes that tests/cli/test_process.py starts.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from unittest import mock

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy.engine import make_url

from shared.config import get_settings
from shared.db import migrate
from shared.db.database import make_engine, normalise_url

_NOISY = ("apscheduler", "alembic", "httpx", "uvicorn.access")  # loggers services.cli's logging set-up quietens


@contextmanager
def environment(env: Mapping[str, str | None]) -> Iterator[None]:
    """``os.environ`` with these changes (None removes a variable), settings read afresh from it:
    what a ``python -c`` script started with this environment would see."""
    get_settings.cache_clear()
    try:
        with mock.patch.dict(os.environ):
            for name, value in env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            yield
    finally:
        get_settings.cache_clear()


@contextmanager
def _logging_restored() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {name: logging.getLogger(name).level for name in _NOISY})
    try:
        yield
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


def _exit_code(exit: SystemExit) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    if exit.code is None:
        return 0
    if isinstance(exit.code, int):
        return exit.code
    print(exit.code, file=sys.stderr)
    return 1


@contextmanager
def _console_width(*consoles) -> Iterator[None]:
    """The width a process started now would give its consoles: Rich reads ``COLUMNS`` when a console
    is made, and services.cli makes its consoles once, at import, under whatever environment the test
    process had then (so a table's columns would depend on which test imported it first)."""
    columns = os.environ.get("COLUMNS", "")
    saved = [console._width for console in consoles]
    try:
        for console in consoles:
            console._width = int(columns) if columns.isdigit() else None
        yield
    finally:
        for console, width in zip(consoles, saved):
            console._width = width


_migrated: list[Path] = []  # this process's database at the newest revision, made on first use
_real_upgrade = migrate.upgrade


def _migrated_database() -> Path:
    if not _migrated:
        directory = Path(tempfile.mkdtemp(prefix="pointsnet-migrated-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        _real_upgrade(f"sqlite:///{directory / 'pointsnet.db'}")
        _migrated.append(directory / "pointsnet.db")
    return _migrated[0]


def _upgrade(url: str, revision: str = "head") -> None:
    """``shared.db.migrate.upgrade`` for a command run here: a SQLite database file not there yet begins
    as a copy of ``_migrated_database()`` (the module's docstring says why); then the real upgrade."""
    parsed = make_url(normalise_url(url))
    path = parsed.database
    if (revision == "head" and parsed.get_backend_name() == "sqlite" and path and path != ":memory:"
            and not parsed.query and not os.path.lexists(path)):
        make_engine(url, pool_size=1).dispose()  # the command's own making of the directory, and its errors
        shutil.copyfile(_migrated_database(), path)
    _real_upgrade(url, revision)


def pointsnet(*args: str, env: Mapping[str, str | None] | None = None) -> subprocess.CompletedProcess:
    """``pointsnet ARGS`` with ``env`` changed in the environment (None removes a variable)."""
    from services import cli

    opened = []

    def tracked_network(*a, **kw):
        network = original(*a, **kw)
        opened.append(network)
        return network

    original = cli._network
    get_settings.cache_clear()
    code = 0
    try:
        with CliRunner().isolation(env=dict(env or {})) as (stdout, stderr, _), _logging_restored(), \
                mock.patch.object(cli, "_network", tracked_network), mock.patch.object(migrate, "upgrade", _upgrade), \
                mock.patch.object(sys, "argv", ["pointsnet", *args]), \
                _console_width(cli.console, cli.err):
            try:
                cli.main()
            except SystemExit as exit:
                code = _exit_code(exit)
            except Exception:  # noqa: BLE001 - what an uncaught exception does to a process
                traceback.print_exc()
                code = 1
            finally:
                for network in opened:
                    network.close()
                sys.stdout.flush()
                sys.stderr.flush()
            out, err = stdout.getvalue(), stderr.getvalue()
    finally:
        get_settings.cache_clear()
    return subprocess.CompletedProcess(["pointsnet", *args], code, out.decode(), err.decode())
