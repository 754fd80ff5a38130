"""POINTSNET_TIMEZONE names one IANA zone, the same on every host: the host's own setting (`localtime`),
the placeholder `Factory` and the system's leap-second (`right/…`) and `posix/…` copies are refused
when a command starts, in one line naming the variable (docs/operations.md, "Configuration")."""

from __future__ import annotations

import pytest

from shared.config import Settings
from tests.cli.inprocess import pointsnet

REFUSED = ["localtime", "Factory", "right/Asia/Shanghai", "right/UTC", "posix/Asia/Shanghai", "posixrules"]


def run(tmp_path, zone: str):
    return pointsnet("db", "upgrade", env={"POINTSNET_DATA_DIR": str(tmp_path / "data"),
                                           "POINTSNET_DATABASE_URL": None, "POINTSNET_TIMEZONE": zone})


@pytest.mark.parametrize("zone", REFUSED)
def test_a_zone_that_is_not_one_iana_zone_is_a_configuration_error(tmp_path, zone):
    done = run(tmp_path, zone)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-500:]
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("configuration error: POINTSNET_TIMEZONE: "), done.stderr
    with pytest.raises(ValueError, match="IANA"):
        Settings(timezone=zone)


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/London", "UTC", "Etc/GMT-8", "America/Argentina/Salta"])
def test_iana_zones_are_accepted(tmp_path, zone):
    done = run(tmp_path, zone)
    assert done.returncode == 0, done.stderr[-500:]
    assert Settings(timezone=zone).zone.key == zone
