"""A writer given keys that exist but are not its network's stops at start.

``pointsnet keys init`` on a new host makes NEW keys; a host started with them on a running network's
database did not stop (only a missing key did): it enrolled a phone already enrolled as a second member
(the blind index under its own key found nobody) and signed answers and checkpoints under a key nobody
recorded. It now refuses in one line, exit 2, before it serves or enrols anyone.
"""

from __future__ import annotations

import json
import shutil

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from shared.config import KeyConfigurationError, Settings
from shared.keys import new_keyring_json
from shared.models.members import Member
from shared.network import Network
from shared.signing_keys import public_key_id, record_rotation
from services.partner_api.app import from_environment
from tests.cli.inprocess import environment, pointsnet
from tests.cli.test_keys_existing_network import _long_running, existing_network
from tests.factories import make_partner


def members(network) -> int:
    return network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(Member)))


def new_host(tmp_path, database_url):
    """A data directory with keys from ``pointsnet keys init``: keys that exist, but are not the network's."""
    host = tmp_path / "new-host"
    done = pointsnet("keys", "init", env={"POINTSNET_DATA_DIR": str(host), "POINTSNET_DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr
    return host


def handle(data_dir, database_url, clock) -> Network:
    return Network(Settings(data_dir=data_dir), database_url=database_url, clock=clock)


def refusal(data_dir, database_url, clock) -> str:
    other = handle(data_dir, database_url, clock)
    try:
        with pytest.raises(KeyConfigurationError) as refused:
            other.check_keys()
    finally:
        other.close()
    return str(refused.value)


@pytest.mark.parametrize("command", [["serve-api"], ["worker"], ["serve"]])
def test_a_long_running_process_with_another_networks_keys_does_not_start(network, database_url, clock, tmp_path,
                                                                          command):
    existing_network(network, clock)
    host = new_host(tmp_path, database_url)
    done = _long_running(command, host, database_url, "started on another network's database with its own keys")
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("configuration error: members are sealed under the personal-data key "), done.stderr
    assert "which this host's keyring does not hold" in done.stderr, done.stderr
    assert "newest checkpoint is not signed by this host's signing key" in done.stderr, done.stderr
    assert "give this host the network's keys" in done.stderr, done.stderr


def test_the_api_with_another_networks_keys_enrols_nobody(network, database_url, clock, tmp_path):
    existing_network(network, clock)
    before = members(network)
    host = new_host(tmp_path, database_url)
    with environment({"POINTSNET_DATA_DIR": str(host), "POINTSNET_DATABASE_URL": database_url,
                      "POINTSNET_SIGNING_KEY_FILE": None, "POINTSNET_PII_KEYS": None,
                      "POINTSNET_PII_KEYS_FILE": None}):
        with pytest.raises(KeyConfigurationError, match="which this host's keyring does not hold"):
            from_environment()
    assert members(network) == before


def test_the_networks_own_keys_start(network, database_url, clock, tmp_path, settings):
    existing_network(network, clock)
    copy = tmp_path / "copy"
    shutil.copytree(settings.data_dir / "keys", copy / "keys")
    other = handle(copy, database_url, clock)
    try:
        other.check_keys()
    finally:
        other.close()


def test_only_the_keyring_foreign(network, database_url, clock, tmp_path, settings):
    existing_network(network, clock)
    host = tmp_path / "host"
    shutil.copytree(settings.data_dir / "keys", host / "keys")
    (host / "keys" / "pii-keys.json").write_text(json.dumps(new_keyring_json()))
    message = refusal(host, database_url, clock)
    assert message.startswith("members are sealed under the personal-data key "), message
    assert "checkpoint" not in message, message


def test_a_keyring_with_the_same_key_id_and_other_key_material(network, database_url, clock, tmp_path, settings):
    existing_network(network, clock)
    host = tmp_path / "host"
    shutil.copytree(settings.data_dir / "keys", host / "keys")
    keyring = json.loads((host / "keys" / "pii-keys.json").read_text())
    fresh = new_keyring_json()
    (material,) = fresh["keys"].values()
    keyring["keys"][keyring["active"]] = material
    (host / "keys" / "pii-keys.json").write_text(json.dumps(keyring))
    message = refusal(host, database_url, clock)
    assert f"personal-data key {keyring['active']} does not open members" in message, message


def test_only_the_signing_key_foreign(network, database_url, clock, tmp_path, settings):
    existing_network(network, clock)
    host = new_host(tmp_path, database_url)
    shutil.copy(settings.data_dir / "keys" / "pii-keys.json", host / "keys" / "pii-keys.json")
    message = refusal(host, database_url, clock)
    assert message.startswith("this network's newest checkpoint is not signed by this host's signing key network-")
    assert "personal-data" not in message.split(":")[0], message


def test_after_a_rotation_the_record_decides(network, database_url, clock, tmp_path, settings):
    """Once a rotation recorded the network's keys: the current key starts, a retired one for the day
    partners' SDKs still believe it, not after; a key never recorded does not."""
    make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
    network.checkpoint()
    network.keyring  # noqa: B018 - made into the data directory, copied with the signing key
    old_host = tmp_path / "old"
    shutil.copytree(settings.data_dir / "keys", old_host / "keys")
    new_host_dir = tmp_path / "rotated"
    shutil.copytree(settings.data_dir / "keys", new_host_dir / "keys")
    new_key = Ed25519PrivateKey.generate()
    (new_host_dir / "keys" / "network-ed25519.pem").write_bytes(new_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    network.tx(lambda tx: record_rotation(tx, network.signing_key.public_key(), new_key.public_key()))
    rotated = handle(new_host_dir, database_url, clock)
    try:
        rotated.check_keys()  # the current key
    finally:
        rotated.close()
    old = handle(old_host, database_url, clock)
    try:
        old.check_keys()  # retired now: still believed for a day
    finally:
        old.close()
    clock.advance(hours=24, minutes=1)
    message = refusal(old_host, database_url, clock)
    assert message.startswith(f"this host's signing key {public_key_id(network.signing_key.public_key())} was "
                              "retired at "), message
    assert public_key_id(new_key.public_key()) in message, message
    stranger = new_host(tmp_path, database_url)
    shutil.copy(settings.data_dir / "keys" / "pii-keys.json", stranger / "keys" / "pii-keys.json")
    message = refusal(stranger, database_url, clock)
    assert "is not one this network recorded (its current key: network-" in message, message


def test_a_brand_new_network_passes(database_url, clock, tmp_path):
    fresh = handle(tmp_path / "fresh", database_url, clock)
    try:
        fresh.check_keys()
    finally:
        fresh.close()
    assert (tmp_path / "fresh" / "keys" / "network-ed25519.pem").exists()


def checkpoints(network) -> int:
    from shared.models.transparency import Checkpoint

    return network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(Checkpoint)), readonly=True)


@pytest.mark.parametrize("command", [["clearing", "run", "--cycle", "2026-11-21"], ["members", "erase", "MEMBER"],
                                     ["webhooks", "deliver"]], ids=["clearing-run", "erase", "deliver"])
def test_a_command_that_signs_or_erases_with_another_networks_keys_does_nothing(network, database_url, clock,
                                                                               tmp_path, command):
    """`clearing run` on such a host signed the cycle's checkpoint with a key nobody recorded: checkpoints are
    append-only, and `pointsnet verify` rejected it for good (found by the review of this session's commits)."""
    existing_network(network, clock)
    member = network.tx(lambda tx: tx.session.scalar(select(Member.id).limit(1)), readonly=True)
    clock.advance(days=1)
    before = checkpoints(network), members(network)
    host = new_host(tmp_path, database_url)
    args = [member if arg == "MEMBER" else arg for arg in command]
    done = pointsnet(*args, env={"POINTSNET_DATA_DIR": str(host), "POINTSNET_DATABASE_URL": database_url,
                                 "POINTSNET_CLOCK": clock.now().isoformat()})
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("configuration error: members are sealed under the personal-data key "), done.stderr
    assert (checkpoints(network), members(network)) == before
    assert network.tx(lambda tx: tx.session.get(Member, member).phone_bidx, readonly=True) is not None
