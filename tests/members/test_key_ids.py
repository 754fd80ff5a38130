"""Personal-data key ids: 1 to 15 letters, digits, '_' or '-' (docs/operations.md, "Keys").

Every ciphertext is ``v1.<key id>.<base64>`` and every blind-index value ``<key id>:<64 hex>`` in a
column of 80 characters. An id with a dot made every ciphertext unreadable (link tokens answered 409
invalid_link_token for ever); an id longer than 15 characters made every enrolment a 500 on PostgreSQL.
Such a keyring is refused when it is read, at the start of a process, like any keyring that cannot be
used: a configuration error naming the rule, never the key material."""

from __future__ import annotations

import base64
import json
import re
import secrets

import pytest

from shared.config import KeyConfigurationError, Settings
from shared.keys import keyring_with_new_key, load_pii_keyring, new_keyring_json, write_keyring
from shared.members.directory import personal_data
from shared.network import Network
from tests.cli.inprocess import pointsnet
from tests.factories import make_partner

RULE = re.compile(r"[A-Za-z0-9_-]{1,15}")
REFUSED = ["pii.2026", "members-pii-2026-q1", "k" * 16, "a:b", "", "pii 2026", "clé", "k/1", "k%1"]


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _keyring(*key_ids: str) -> dict:
    return {"active": key_ids[0], "keys": {key_id: {"encryption": _key(), "index": _key()} for key_id in key_ids}}


def _secrets_of(keyring: dict) -> list[str]:
    return [value for key in keyring["keys"].values() for value in key.values()]


@pytest.mark.parametrize("key_id", REFUSED)
def test_a_key_id_the_stored_formats_cannot_hold_is_refused_when_the_keyring_is_read(tmp_path, key_id):
    keyring = _keyring(key_id)
    with pytest.raises(KeyConfigurationError) as refused:
        load_pii_keyring(Settings(data_dir=tmp_path / "data", pii_keys=json.dumps(keyring)))
    message = str(refused.value)
    assert message.startswith("POINTSNET_PII_KEYS: "), message
    assert "1 to 15 letters, digits, '_' or '-'" in message, message
    assert not any(secret in message for secret in _secrets_of(keyring)), message


def test_an_inactive_key_with_a_bad_id_is_refused_too(tmp_path):
    """Lookups compute an index under every key of the keyring, and a rotation makes it active later."""
    keyring = _keyring("k1", "pii.2026")
    path = tmp_path / "pii-keys.json"
    path.write_text(json.dumps(keyring))
    with pytest.raises(KeyConfigurationError) as refused:
        load_pii_keyring(Settings(data_dir=tmp_path / "data", pii_keys_file=path))
    message = str(refused.value)
    assert message.startswith("POINTSNET_PII_KEYS_FILE: ") and "1 to 15 letters" in message, message
    assert not any(secret in message for secret in _secrets_of(keyring)), message
    with pytest.raises(ValueError):  # nor is such a keyring ever written
        write_keyring(tmp_path / "other.json", keyring)
    assert not (tmp_path / "other.json").exists()


def test_a_network_with_a_bad_key_id_does_not_start(tmp_path, database_url, clock):
    network = Network(Settings(data_dir=tmp_path / "data", pii_keys=json.dumps(_keyring("pii.2026"))),
                      database_url=database_url, clock=clock)
    try:
        with pytest.raises(KeyConfigurationError):
            network.keyring  # noqa: B018  (read at start, as a process does)
    finally:
        network.close()


@pytest.mark.parametrize("command", [("keys", "init"), ("keys", "rotate")])
def test_a_bad_key_id_is_a_one_line_configuration_error_and_exit_2(tmp_path, command):
    keyring = _keyring("members-pii-2026-q1")
    done = pointsnet(*command, env={"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None,
                                    "POINTSNET_PII_KEYS": json.dumps(keyring)})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-600:]
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("configuration error: POINTSNET_PII_KEYS: "), done.stderr
    assert "1 to 15 letters" in done.stderr
    assert not any(secret in done.stderr + done.stdout for secret in _secrets_of(keyring))
    assert not (tmp_path / "data" / "keys" / "pii-keys.next.json").exists()  # nothing staged


def test_every_key_id_the_network_generates_follows_the_rule(tmp_path):
    for _ in range(200):
        assert RULE.fullmatch(new_keyring_json()["active"])
    data, added = keyring_with_new_key(new_keyring_json())
    assert RULE.fullmatch(added) and added in data["keys"]
    active, keys = load_pii_keyring(Settings(data_dir=tmp_path / "data"))  # generated on first use
    assert RULE.fullmatch(active) and all(RULE.fullmatch(key_id) for key_id in keys)


@pytest.mark.parametrize("key_id", ["k" * 15, "pii_2026-Q1", "K", "0"])
def test_a_key_id_within_the_rule_works_for_enrolment_lookup_and_link_tokens(tmp_path, database_url, clock,
                                                                                key_id):
    """The longest id fills the blind-index columns exactly (PostgreSQL checks their length)."""
    network = Network(Settings(data_dir=tmp_path / "data", pii_keys=json.dumps(_keyring(key_id))),
                      database_url=database_url, clock=clock)
    try:
        coffee, books = make_partner(network, "Coffee"), make_partner(network, "Books")
        enrolled = network.enrol(coffee, phone="+8613800138000", email="li.lei@example.com")
        member = enrolled["member_id"]
        assert enrolled["created"]
        assert network.enrol(coffee, phone="138 0013 8000")["member_id"] == member
        assert network.tx(lambda tx: personal_data(tx, network.keyring, member), readonly=True)["email"] \
            == "li.lei@example.com"
        token = network.mint_link_token(coffee, member)["link_token"]
        assert network.enrol(books, link_token=token) == {"member_id": member, "created": False, "linked": True}
    finally:
        network.close()
