"""Settings the network cannot run with are refused when a command starts, in one line naming the
variable and exit 2 (docs/operations.md, "Configuration"): never a traceback later, never a server
that answers 500."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.cli.inprocess import pointsnet as run_pointsnet


def pointsnet(tmp_path, *args, env=None):
    """``pointsnet ARGS`` on the embedded database of ``tmp_path/data`` (``env``: more variables)."""
    return run_pointsnet(*args, env={"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None,
                                     **(env or {})})


def one_line_error(done) -> bool:
    return done.returncode != 0 and "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0


def refused_as(done, variable: str) -> bool:
    return done.returncode == 2 and one_line_error(done) and done.stderr.startswith(f"configuration error: {variable}: ")


# RFC 3339 with seconds and its offset, as documented: until 2026-12-07 fromisoformat's leniency took the last
# four, and read +08:60 as +09:00 (the clock an hour off)
@pytest.mark.parametrize("value", ["garbage", "2026-11-20", "2026-11-20T10:00:00", "9999-12-31T23:00:00-05:00",
                                   "2026-11-20T02:00Z", "20261120T020000Z", "2026-W47-5T02:00:00Z",
                                   "2026-11-20T02:00:00+08:60"])
def test_a_clock_that_is_not_an_instant_is_a_configuration_error(tmp_path, value):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    done = pointsnet(tmp_path, "partners", "list", env={"POINTSNET_CLOCK": value})
    assert refused_as(done, "POINTSNET_CLOCK") and value not in done.stderr, done.stderr[-500:]
    fixed = pointsnet(tmp_path, "partners", "list", env={"POINTSNET_CLOCK": "2026-11-20T02:00:00Z"})
    assert fixed.returncode == 0, fixed.stderr[-500:]


@pytest.mark.parametrize("variable, value", [
    ("POINTSNET_RATE_LIMIT", "lots per minute"),
    ("POINTSNET_RATE_LIMIT", "2/second;5/minute"),  # until 2026-12-07 only the first rate was enforced
    ("POINTSNET_RATE_LIMIT", "0/hour"),  # until 2026-12-07 every signed request was answered 500
    ("POINTSNET_REDIS_URL", "not-a-redis-url"),
    ("POINTSNET_REDIS_URL", "memory://"),
    ("POINTSNET_REDIS_URL", "redis://cache:notaport/0"),
    ("POINTSNET_REDIS_URL", "redis+sentinel://:26379,sentinel-2:26379/main"),
    ("POINTSNET_REDIS_URL", "redis+sentinel://sentinel-1:26379,sentinel-2:26379"),
    ("POINTSNET_REDIS_URL", "redis://cache:6379/0?socket_timeout=soon"),
    ("POINTSNET_REDIS_URL", "redis+cluster://cache-1:6379,cache-2:6379?socket_timeout=soon"),
    ("POINTSNET_REDIS_URL", "redis+sentinel://sentinel-1:26379/main?socket_connect_timeout=-1"),
])
def test_serve_api_with_an_unusable_rate_limit_setting_does_not_start(tmp_path, monkeypatch, variable, value):
    """Parsed only when the first request built the gate, such a value let serve-api start and answer
    every request, /health/live included, with 500."""
    import uvicorn
    from fastapi.testclient import TestClient

    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    assert pointsnet(tmp_path, "keys", "init").returncode == 0
    served = []

    def run(application, **_):  # what uvicorn would serve: one liveness probe
        served.append(TestClient(application, raise_server_exceptions=False).get("/health/live").status_code)

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, **_: run(server.config.app))  # one process
    done = pointsnet(tmp_path, "serve-api", env={variable: value})
    assert served == [] and refused_as(done, variable), (served, done.stderr[-500:])
    assert value not in done.stderr  # a Redis URL may hold a password


@pytest.mark.parametrize("variable, value", [
    ("POINTSNET_REDIS_URL", "redis://:secret@cache.internal:6379/0"),
    ("POINTSNET_REDIS_URL", "rediss://cache.internal"),
    ("POINTSNET_REDIS_URL", "redis+unix:///run/redis/redis.sock"),
    ("POINTSNET_REDIS_URL", "redis+sentinel://sentinel-1:26379,sentinel-2:26379/main"),
    ("POINTSNET_REDIS_URL", "redis+cluster://cache-1:6379,cache-2:6379?socket_timeout=2&socket_connect_timeout=1"),
    ("POINTSNET_RATE_LIMIT", "100 per second"),
])
def test_a_usable_rate_limit_setting_is_accepted(tmp_path, variable, value):
    done = pointsnet(tmp_path, "db", "upgrade", env={variable: value})  # checked, never connected to
    assert done.returncode == 0, done.stderr[-500:]


@pytest.mark.parametrize("value", ["yuan", "JP", "JPY1", "¥", "", "XAU"])
def test_a_currency_that_is_not_an_iso_code_is_a_configuration_error(tmp_path, value):
    done = pointsnet(tmp_path, "db", "upgrade", env={"POINTSNET_CURRENCY": value})
    assert refused_as(done, "POINTSNET_CURRENCY"), done.stderr[-500:]


@pytest.mark.parametrize("value", ["XX", "China", ""])
def test_a_default_region_phone_numbers_do_not_know_is_a_configuration_error(tmp_path, value):
    done = pointsnet(tmp_path, "db", "upgrade", env={"POINTSNET_DEFAULT_REGION": value})
    assert refused_as(done, "POINTSNET_DEFAULT_REGION"), done.stderr[-500:]


MOST_DAYS, MOST_HOURS, MOST_MINUTES = 36500, 36500 * 24, 36500 * 24 * 60  # 100 years


def durations():
    """(variable, its bound, the most it takes with what that needs besides)."""
    for variable, bound in [("POINTSNET_OCCURRED_AT_WINDOW_HOURS", MOST_HOURS), ("POINTSNET_RETURN_GRACE_DAYS", MOST_DAYS),
                            ("POINTSNET_HOLD_TIMEOUT_MINUTES", MOST_MINUTES),
                            ("POINTSNET_IDEMPOTENCY_RETENTION_DAYS", MOST_DAYS),
                            ("POINTSNET_SETTLEMENT_GRACE_MINUTES", MOST_MINUTES),
                            ("POINTSNET_SETTLEMENT_LAG_BUSINESS_DAYS", MOST_DAYS),
                            ("POINTSNET_ACTIVITY_DORMANT_DAYS", MOST_DAYS), ("POINTSNET_EXPIRY_REMINDER_DAYS", MOST_DAYS)]:
        yield variable, bound, {variable: str(bound)}
    # at risk comes before dormant: its most is one day less
    yield ("POINTSNET_ACTIVITY_AT_RISK_DAYS", MOST_DAYS,
           {"POINTSNET_ACTIVITY_AT_RISK_DAYS": str(MOST_DAYS - 1), "POINTSNET_ACTIVITY_DORMANT_DAYS": str(MOST_DAYS)})


@pytest.mark.parametrize("variable, bound, most", list(durations()))
def test_a_duration_beyond_100_years_is_a_configuration_error(tmp_path, variable, bound, most):
    """Tens of thousands of years overflowed the calendar in every request or job adding it to the
    network's time (an earn's occurred_at window, a hold's expiry, the idempotency clean-up)."""
    for value in (bound + 1, 9999999999):
        done = pointsnet(tmp_path, "db", "upgrade", env={variable: str(value)})
        assert refused_as(done, variable), (value, done.stderr[-500:])
    accepted = pointsnet(tmp_path, "db", "upgrade", env=most)
    assert accepted.returncode == 0, accepted.stderr[-500:]


@pytest.mark.parametrize("command", [("db", "upgrade"), ("keys", "init"), ("verify",)])
def test_a_data_directory_that_is_a_file_is_a_configuration_error(tmp_path, command):
    (tmp_path / "not-a-directory").write_text("")
    done = pointsnet(tmp_path, *command, env={"POINTSNET_DATA_DIR": str(tmp_path / "not-a-directory")})
    assert refused_as(done, "POINTSNET_DATA_DIR"), done.stderr[-500:]


def test_a_keys_directory_that_cannot_be_made_is_a_configuration_error(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    (tmp_path / "data" / "keys").write_text("")  # where the generated keys would go
    done = pointsnet(tmp_path, "keys", "init")
    assert refused_as(done, "POINTSNET_DATA_DIR"), done.stderr[-500:]


@pytest.mark.parametrize("command", [("db", "upgrade"), ("keys", "init")])
def test_a_data_directory_on_a_read_only_mount_is_a_configuration_error(tmp_path, monkeypatch, command):
    """A read-only mount (or a systemd unit whose ReadWritePaths leaves the data directory out): the
    system refuses every directory and file created under it. Simulated, since root writes anywhere."""
    mount, real_mkdir, real_open = tmp_path / "ro", Path.mkdir, os.open

    def refused(path):
        return OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def mkdir(self, *args, **kwargs):
        if self.is_relative_to(mount) and not self.exists():
            raise refused(self)
        return real_mkdir(self, *args, **kwargs)

    def open_(path, flags, *args, **kwargs):
        if Path(path).is_relative_to(mount) and flags & os.O_CREAT:
            raise refused(path)
        return real_open(path, flags, *args, **kwargs)

    mount.mkdir()
    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
    done = pointsnet(tmp_path, *command, env={"POINTSNET_DATA_DIR": str(mount / "data")})
    assert refused_as(done, "POINTSNET_DATA_DIR") and "Read-only file system" in done.stderr, done.stderr[-500:]


@pytest.mark.parametrize("url", ["mysql://pointsnet@db/pointsnet", "mssql+pyodbc://pointsnet:secret@db/pointsnet",
                                 "not a url"])
def test_a_database_url_neither_sqlite_nor_postgresql_is_a_configuration_error(tmp_path, url):
    done = pointsnet(tmp_path, "db", "upgrade", env={"POINTSNET_DATABASE_URL": url})
    assert refused_as(done, "POINTSNET_DATABASE_URL") and "secret" not in done.stderr, done.stderr[-500:]


@pytest.mark.parametrize("url, engine_url", [
    ("postgres+psycopg://pointsnet@db:5432/pointsnet", "postgresql+psycopg://pointsnet@db:5432/pointsnet"),
    ("postgres://pointsnet@db/pointsnet", "postgresql+psycopg://pointsnet@db/pointsnet"),
    ("postgresql://pointsnet@db/pointsnet", "postgresql+psycopg://pointsnet@db/pointsnet"),
])
def test_every_postgresql_spelling_the_check_accepts_is_one_the_engine_can_use(url, engine_url):
    """The start-up check accepts the backend name ``postgres`` (the URL scheme Heroku-style services
    hand out); the engine must then know it too, not fail with a traceback at its first use."""
    from shared.config import Settings
    from shared.db.database import normalise_url

    assert Settings(database_url=url).database_url == url
    assert normalise_url(url) == engine_url


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_data_directory_is_a_configuration_error_and_makes_no_network(tmp_path, value, monkeypatch):
    """Set but empty, POINTSNET_DATA_DIR read as the working directory: `partners add` made a new network's
    pointsnet.db there, exit 0, while the operator meant the real one (until 2026-12-07)."""
    monkeypatch.chdir(tmp_path)
    done = pointsnet(tmp_path, "partners", "add", "Shop", env={"POINTSNET_DATA_DIR": value})
    assert refused_as(done, "POINTSNET_DATA_DIR"), done.stderr[-500:]
    assert not (tmp_path / "pointsnet.db").exists()
