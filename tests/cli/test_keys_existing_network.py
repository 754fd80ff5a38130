"""A writer's first start makes the network's keys only for a brand-new network.

A host whose data directory has no keys/ (and no key configured), pointed at the database of a network
that already signed checkpoints and sealed members, made NEW keys: it then enrolled an already-enrolled
person a second time (the blind index under its own key found nobody) and signed checkpoints that
``pointsnet verify`` rejected. It refuses in one line, exit 2, and writes no key.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import date

import pytest
from sqlalchemy import func, select

from shared.config import KeyConfigurationError, Settings
from shared.models.members import Member
from shared.network import Network
from services.partner_api.app import from_environment
from tests.cli.inprocess import environment, pointsnet
from tests.factories import make_partner


def existing_network(network, clock) -> None:
    """A network in use: a member sealed under its keyring, a checkpoint signed by its key."""
    partner = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
    member = network.enrol(partner, phone="+442071234567")["member_id"]
    network.earn(partner, member, "e1", points=500)
    clock.advance(days=1)
    network.settle(date(2026, 11, 20))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def members(network) -> int:
    return network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(Member)))


def refused(done, empty) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("configuration error: "), done.stderr
    assert "already has them in use" in done.stderr and "POINTSNET_DATA_DIR" in done.stderr, done.stderr
    assert not (empty / "keys").exists()


@pytest.mark.parametrize("command", [["serve-api"], ["worker"], ["serve"]])
def test_a_long_running_process_on_an_existing_network_makes_no_new_keys(network, database_url, clock, tmp_path,
                                                                         command):
    existing_network(network, clock)
    empty = tmp_path / "new-host"
    empty.mkdir()
    done = _long_running(command, empty, database_url, "started on another network's database with new keys")
    refused(done, empty)


def _long_running(command: list[str], data_dir, database_url: str, if_it_starts: str):
    """``pointsnet COMMAND`` on ``data_dir`` with no key configured elsewhere, which must stop at once
    (the test fails, saying ``if_it_starts``, should it run on)."""
    env = dict(os.environ, POINTSNET_DATA_DIR=str(data_dir), POINTSNET_DATABASE_URL=database_url)
    for variable in ("POINTSNET_SIGNING_KEY_FILE", "POINTSNET_PII_KEYS", "POINTSNET_PII_KEYS_FILE"):
        env.pop(variable, None)
    if command[0] != "worker":
        command = [*command, "--port", str(free_port())]
    try:
        return subprocess.run([sys.executable, "-m", "services.cli", *command], env=env, capture_output=True,
                              text=True, timeout=40)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`pointsnet {' '.join(command)}` {if_it_starts}")


def test_the_api_on_a_host_without_the_keys_does_not_start_and_enrols_nobody(network, database_url, clock,
                                                                            tmp_path):
    existing_network(network, clock)
    before = members(network)
    empty = tmp_path / "new-host"
    with environment({"POINTSNET_DATA_DIR": str(empty), "POINTSNET_DATABASE_URL": database_url,
                      "POINTSNET_SIGNING_KEY_FILE": None, "POINTSNET_PII_KEYS": None,
                      "POINTSNET_PII_KEYS_FILE": None}):
        with pytest.raises(KeyConfigurationError, match="already has them in use"):
            from_environment()
    assert not (empty / "keys").exists()
    assert members(network) == before


@pytest.mark.parametrize("made", ["checkpoint", "member"])
def test_each_kind_of_use_is_enough(network, database_url, clock, tmp_path, made):
    partner = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
    if made == "checkpoint":
        network.checkpoint()
    else:
        network.enrol(partner, email="ada@example.com")
    empty = tmp_path / "new-host"
    other = Network(Settings(data_dir=empty), database_url=database_url, clock=clock)
    try:
        with pytest.raises(KeyConfigurationError, match="already has them in use"):
            other.keyring  # noqa: B018
        with pytest.raises(KeyConfigurationError, match="already has them in use"):
            other.signing_key  # noqa: B018
    finally:
        other.close()
    assert not (empty / "keys").exists()


def test_a_brand_new_network_still_makes_its_keys(network, database_url, clock, tmp_path):
    """Members without personal data and no checkpoint: nothing was made with a key yet."""
    make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
    fresh = tmp_path / "fresh"
    other = Network(Settings(data_dir=fresh), database_url=database_url, clock=clock)
    try:
        other.keyring, other.signing_key  # noqa: B018
    finally:
        other.close()
    assert (fresh / "keys" / "pii-keys.json").exists() and (fresh / "keys" / "network-ed25519.pem").exists()


def test_keys_init_still_makes_keys(network, database_url, clock, tmp_path):
    existing_network(network, clock)
    empty = tmp_path / "new-host"
    done = pointsnet("keys", "init", env={"POINTSNET_DATA_DIR": str(empty), "POINTSNET_DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr
    assert (empty / "keys" / "pii-keys.json").exists()


@pytest.mark.parametrize("command", [["serve-api"], ["worker"], ["serve"]])
def test_a_data_directory_that_is_a_file_is_one_line(database_url, tmp_path, command):
    """Named a file (with the database elsewhere, as on PostgreSQL), the long-running processes crashed
    with a NotADirectoryError traceback; ``keys init`` already said it in one line."""
    in_the_way = tmp_path / "data"
    in_the_way.write_text("not a directory\n")
    done = _long_running(command, in_the_way, database_url, "started with a file as its data directory")
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("configuration error: POINTSNET_DATA_DIR: cannot "), done.stderr
    assert "(a file is in the way)" in done.stderr, done.stderr
    assert in_the_way.read_text() == "not a directory\n"
