"""A command that only reads never makes the network's keys. A writer's first start makes them in the
data directory; a read-only command run on a read-only replica host, or with a mistyped
POINTSNET_DATA_DIR, would silently make new ones there (a signing key no partner knows, a keyring that
opens no member's data). It says in one line which key is missing and exits non-zero instead; a
read-only command that needs no key runs without one."""

from __future__ import annotations

import json
from datetime import date

import pytest

from shared.config import KeyConfigurationError, Settings
from shared.keys import KeyNotMade, load_pii_keyring, load_signing_key
from shared.network import Network
from tests.cli.inprocess import pointsnet
from tests.factories import make_member, make_partner


def run(data_dir, database_url, *args):
    return pointsnet(*args, env={"POINTSNET_DATA_DIR": str(data_dir), "POINTSNET_DATABASE_URL": database_url})


def settled(network, clock) -> str:
    """A settled cycle: its files and the checkpoint at its cut-off are signed by the network's key."""
    partner = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
    network.earn(partner, make_member(network, partner), "e1", points=500)
    clock.advance(days=1)
    return network.settle(date(2026, 11, 20))["directory"]


def test_verify_without_the_signing_key_says_so_and_makes_none(network, database_url, clock, tmp_path):
    """The ledger holds checkpoints the network signed: verify checks them with its key. From a mistyped
    data directory it made a new key there, and then reported every checkpoint as forged."""
    settled(network, clock)
    mistyped = tmp_path / "dta"
    done = run(mistyped, database_url, "verify", "--json")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "signing key" in done.stderr and "does not exist" in done.stderr, done.stderr
    assert "POINTSNET_DATA_DIR" in done.stderr, done.stderr
    assert not (mistyped / "keys").exists()
    done = run(network.settings.data_dir, database_url, "verify", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["ok"], done.stderr


def test_verify_of_a_ledger_with_nothing_signed_needs_no_key(network, database_url, tmp_path):
    partner = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
    network.earn(partner, make_member(network, partner), "e1", points=500)
    replica_host = tmp_path / "replica-host"
    done = run(replica_host, database_url, "verify", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["ok"], done.stderr
    assert not (replica_host / "keys").exists()


def test_reconcile_without_the_signing_key_says_so_and_makes_none(network, database_url, clock, tmp_path):
    """A settlement directory is checked against the network's signature: from another data directory
    reconcile made a new key there and reported the directory's signature as not verifying."""
    directory = settled(network, clock)
    other = tmp_path / "elsewhere"
    done = run(other, database_url, "reconcile", str(directory))
    assert done.returncode == 2 and "signing key" in done.stderr, (done.stdout, done.stderr)
    assert not (other / "keys").exists()
    assert run(network.settings.data_dir, database_url, "reconcile", str(directory)).returncode == 0


def test_read_only_commands_that_need_no_key_run_without_and_make_none(network, database_url, tmp_path):
    empty = tmp_path / "replica-host"
    for args in (("members", "status-counts"), ("alerts", "list"), ("partners", "list"), ("clearing", "list"),
                 ("clearing", "calendar", "list")):
        done = run(empty, database_url, *args)
        assert done.returncode == 0, (args, done.stderr)
    assert not (empty / "keys").exists()


def test_a_writer_still_makes_the_keys_on_first_start_and_verify_then_uses_them(network, database_url, tmp_path):
    data_dir = tmp_path / "fresh"
    Network(Settings(data_dir=data_dir), database_url=database_url).signing_key  # noqa: B018  a writer's start
    assert (data_dir / "keys" / "network-ed25519.pem").exists()
    done = run(data_dir, database_url, "verify", "--json")
    assert done.returncode == 0, done.stderr


def test_keys_opened_without_creating(tmp_path, database_url):
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(KeyNotMade, match="signing key .* does not exist"):
        load_signing_key(settings, create=False)
    with pytest.raises(KeyConfigurationError, match="personal-data keyring .* does not exist"):
        load_pii_keyring(settings, create=False)
    reading = Network(settings, database_url=database_url, create_keys=False)
    with pytest.raises(KeyConfigurationError):
        reading.keyring  # noqa: B018
    with pytest.raises(KeyConfigurationError):
        reading.signing_key  # noqa: B018
    assert not (settings.data_dir / "keys").exists()
    load_signing_key(settings), load_pii_keyring(settings)  # a writer makes them
    assert load_signing_key(settings, create=False) and load_pii_keyring(settings, create=False)
    reading = Network(settings, database_url=database_url, create_keys=False)
    assert reading.keyring.active and reading.signing_key
