"""deploy/systemd: what the units promise docs/operations.md ("A plain VM with systemd").

ProtectSystem=strict leaves the whole file system read-only but ReadWritePaths=, /tmp and /var/tmp
included: every unit that sets it gives its process a private, writable /tmp (PrivateTmp=true), or
the dashboard's "Verify the run's files" (a recomputation in a temporary directory) and a Reconcile
upload over 1 MB (spooled to a temporary file) fail. The migration is a oneshot the other units
Requires=: it must stay active once done (RemainAfterExit=yes), or every start and every automatic
restart of an API process, a worker or the dashboard runs the migrations again, and one that fails
then keeps the process from coming back."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
UNITS = sorted(SYSTEMD.glob("*.service"))


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def test_there_are_units():
    assert {p.name for p in UNITS} >= {"pointsnet-api@.service", "pointsnet-worker@.service",
                                       "pointsnet-dashboard.service", "pointsnet-migrate.service"}


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_every_unit_is_read_only_but_its_data_directory_and_a_private_tmp(path):
    service = unit(path)["Service"]
    assert service.get("ProtectSystem") == "strict", f"{path.name}: the file system is not read-only to it"
    assert service.get("ReadWritePaths") == "/var/lib/pointsnet"
    assert service.get("PrivateTmp") == "true", f"{path.name}: /tmp and /var/tmp are read-only to it"
    assert service.get("NoNewPrivileges") == "true"


def test_the_migration_stays_active_for_the_units_that_require_it():
    migrate = unit(SYSTEMD / "pointsnet-migrate.service")["Service"]
    assert migrate.get("Type") == "oneshot"
    assert migrate.get("RemainAfterExit") == "yes"
    requiring = [p.name for p in UNITS if "pointsnet-migrate.service" in unit(p)["Unit"].get("Requires", "")]
    assert sorted(requiring) == ["pointsnet-api@.service", "pointsnet-dashboard.service", "pointsnet-worker@.service"]
    for name in requiring:
        assert "pointsnet-migrate.service" in unit(SYSTEMD / name)["Unit"].get("After", "")  # ordered after it


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_every_unit_waits_for_the_network_it_pulls_in(path):
    """After=network-online.target alone does not start that target (systemd.special(7)): at boot the
    migration could run before the network was up, fail against a PostgreSQL on another server, and leave
    the API, workers and dashboard down until someone started it again."""
    section = unit(path)["Unit"]
    assert "network-online.target" in section.get("After", "").split()
    assert "network-online.target" in section.get("Wants", "").split(), f"{path.name}: After= without Wants="
