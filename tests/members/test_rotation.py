"""Key rotation: a new active key, every ciphertext and index value re-sealed in bounded batches
while the network keeps enrolling and looking members up; old keys retired only when unused."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.config import Settings
from shared.keys import activate_pii_key, add_pii_key, load_pii_keyring, new_keyring_json
from shared.members.rotation import rotate_batch, stale_count
from shared.models import Member
from shared.network import Network
from tests.cli.inprocess import pointsnet
from tests.conftest import PG_URL
from tests.factories import make_member, make_partner, verify_ok
from tests.members.test_privacy import lookup


def _rows(network):
    return network.tx(lambda tx: tx.session.execute(select(Member).order_by(Member.id)).scalars().all(), readonly=True)


def test_rotation_reseals_in_bounded_batches_and_keeps_every_member_findable(network, settings):
    shop = make_partner(network)
    phones = [f"+86139{n:08d}" for n in range(30)]
    members = [make_member(network, shop, phone=phone, email=f"m{n}@example.com") for n, phone in enumerate(phones)]
    old = network.keyring.active.id
    new = add_pii_key(settings)  # phase 1: known to every process, not sealed with yet
    assert network.keyring.active.id == old and set(network.keyring.keys) == {old, new}
    activate_pii_key(settings, new)  # phase 2
    assert network.keyring.active.id == new and set(network.keyring.keys) == {old, new}
    key_file = settings.data_dir / "keys" / "pii-keys.json"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    # one batch re-seals at most its limit, in id order; the rest is still found under the old key
    keyring = network.keyring
    assert network.tx(lambda tx: rotate_batch(tx, keyring, 7)) == 7
    rows = _rows(network)
    assert [r.id for r in rows if r.phone_ct.startswith(f"v1.{new}.")] == sorted(members)[:7]
    assert network.tx(lambda tx: stale_count(tx, new), readonly=True) == 23
    for n, phone in enumerate(phones):
        assert lookup(network, phone=phone) == members[n] and lookup(network, email=f"m{n}@example.com") == members[n]
    # enrolling during the rotation: a known phone is still recognised (consent needed), a new one is sealed new
    other = make_partner(network)
    with pytest.raises(Exception) as caught:
        network.enrol(other, phone=phones[-1])
    assert getattr(caught.value, "code", None) == "consent_required"
    late = make_member(network, shop, phone="+8613700000001")

    assert network.rotate_personal_data(batch_size=5) == 23
    assert network.tx(lambda tx: stale_count(tx, new), readonly=True) == 0
    for row in _rows(network):
        for token in (row.phone_ct, row.email_ct):
            if token:
                assert token.startswith(f"v1.{new}.")
        assert row.phone_bidx.startswith(f"{new}:")
    # the old key is no longer needed: a keyring of the new key alone finds and decrypts everything
    from shared.members.privacy import Keyring

    active, keys = load_pii_keyring(settings)
    only_new = Keyring(active, {new: keys[new]})
    for row in _rows(network):
        assert only_new.decrypt("phone", row.id, row.phone_ct).startswith("+86")
    assert lookup(network, phone="+8613700000001") == late
    assert network.rotate_personal_data() == 0  # resumable, idempotent
    verify_ok(network)


def test_lookups_and_enrolments_keep_working_while_a_rotation_runs(network, settings):
    shop = make_partner(network)
    phones = [f"+86138{n:08d}" for n in range(40)]
    members = {phone: make_member(network, shop, phone=phone) for phone in phones}
    activate_pii_key(settings, add_pii_key(settings))
    missed: list[str] = []
    stop = threading.Event()

    def look_up():
        while not stop.is_set():
            for phone in phones[::7]:
                if lookup(network, phone=phone) != members[phone]:
                    missed.append(phone)

    reader = threading.Thread(target=look_up)
    reader.start()
    try:
        resealed = network.rotate_personal_data(batch_size=3)
    finally:
        stop.set()
        reader.join()
    assert resealed == len(phones) and missed == []


def _cli(data_dir: Path, *args, env_extra: dict | None = None):
    return pointsnet(*args, env={"POINTSNET_DATA_DIR": str(data_dir), **(env_extra or {}),
                                 "POINTSNET_DATABASE_URL": None})


@pytest.mark.skipif(bool(PG_URL), reason="the command runs on its data directory's SQLite database")
def test_keys_rotate_and_retire_from_the_command_line(tmp_path):
    data_dir = tmp_path / "data"
    assert _cli(data_dir, "db", "upgrade").returncode == 0
    network = Network(Settings(data_dir=data_dir))
    shop = make_partner(network)
    member = make_member(network, shop, phone="+8613812345678")
    old = network.keyring.active.id
    network.close()

    rotated = _cli(data_dir, "keys", "rotate", "--batch-size", "1", "--settle-seconds", "0")
    assert rotated.returncode == 0, rotated.stderr
    report = json.loads(rotated.stdout)
    assert report["resealed"] == 1 and report["left"] == 0 and report["old_keys"] == [old]
    assert "+8613812345678" not in rotated.stdout + rotated.stderr

    retired = _cli(data_dir, "keys", "retire", old)
    assert retired.returncode == 0, retired.stderr
    network = Network(Settings(data_dir=data_dir))
    assert set(network.keyring.keys) == {report["active_key"]}
    assert lookup(network, phone="+8613812345678") == member
    network.close()
    active = _cli(data_dir, "keys", "retire", report["active_key"])
    assert active.returncode != 0 and "active key" in active.stderr


@pytest.mark.skipif(bool(PG_URL), reason="the command runs on its data directory's SQLite database")
def test_keys_from_the_environment_are_staged_for_the_operator_one_phase_at_a_time(tmp_path):
    data_dir = tmp_path / "data"
    assert _cli(data_dir, "db", "upgrade").returncode == 0
    keyring = new_keyring_json()
    staged = _cli(data_dir, "keys", "rotate", env_extra={"POINTSNET_PII_KEYS": json.dumps(keyring)})
    assert staged.returncode == 0, staged.stderr
    report = json.loads(staged.stdout)
    path = Path(report["next_keyring_file"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    staged_keys = json.loads(path.read_text())
    # phase 1: the new key is in the keyring, the active key is still the current one
    assert report["active_key"] == staged_keys["active"] == keyring["active"]
    assert set(staged_keys["keys"]) == {keyring["active"], report["added_key"]}
    assert "POINTSNET_PII_KEYS" in staged.stderr and f"--activate {report['added_key']}" in staged.stderr
    # no secret on the terminal
    assert staged_keys["keys"][report["added_key"]]["encryption"] not in staged.stdout + staged.stderr

    # phase 2, with the phase-1 keyring deployed: the same keys, the new one active
    activated = _cli(data_dir, "keys", "rotate", "--activate", report["added_key"],
                     env_extra={"POINTSNET_PII_KEYS": json.dumps(staged_keys)})
    assert activated.returncode == 0, activated.stderr
    assert json.loads(activated.stdout)["activated_key"] == report["added_key"]
    assert json.loads(path.read_text()) == {**staged_keys, "active": report["added_key"]}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "POINTSNET_PII_KEYS" in activated.stderr and "--reencrypt-only" in activated.stderr
    assert staged_keys["keys"][report["added_key"]]["encryption"] not in activated.stdout + activated.stderr
    # activating with the old keyring (phase 1 not deployed here): refused in one line, nothing staged
    path.unlink()
    early = _cli(data_dir, "keys", "rotate", "--activate", report["added_key"],
                 env_extra={"POINTSNET_PII_KEYS": json.dumps(keyring)})
    assert early.returncode != 0 and early.stderr.strip().count("\n") == 0 and "Traceback" not in early.stderr
    assert f"no personal-data key {report['added_key']}" in early.stderr and not path.exists()


@pytest.mark.skipif(bool(PG_URL), reason="the command runs on its data directory's SQLite database")
def test_with_a_key_file_the_command_adds_the_key_inactive_then_activates_it_after_the_settle_time(
        tmp_path, monkeypatch):
    """Each wait of the command is seen from a running process (the key file re-read on change):
    during the first wait the new key is known but not active, during the second it is active."""
    import time

    data_dir = tmp_path / "data"
    assert _cli(data_dir, "db", "upgrade").returncode == 0
    network = Network(Settings(data_dir=data_dir))
    shop = make_partner(network)
    member = make_member(network, shop, phone="+8613812340000")
    old = network.keyring.active.id
    seen: list[tuple[float, str, set[str]]] = []

    def waiting(seconds: float) -> None:  # what a running process has while the command waits
        keyring = network.keyring
        seen.append((seconds, keyring.active.id, set(keyring.keys)))
        if len(seen) == 1:  # enrolled during phase 1: sealed under the old key, re-sealed after phase 2
            make_member(network, shop, phone="+8613812340001")

    monkeypatch.setattr(time, "sleep", waiting)
    try:
        rotated = _cli(data_dir, "keys", "rotate", "--settle-seconds", "7")
    finally:
        monkeypatch.undo()
    assert rotated.returncode == 0, rotated.stderr
    report = json.loads(rotated.stdout)
    new = report["active_key"]
    assert new != old and report["old_keys"] == [old]
    assert seen == [(7.0, old, {old, new}), (7.0, new, {old, new})]
    assert report["resealed"] == 2 and report["left"] == 0
    assert lookup(network, phone="+8613812340000") == member
    network.close()

    # resuming phase 2 by hand: a key the file does not hold is refused in one line, the file unchanged
    key_file = data_dir / "keys" / "pii-keys.json"
    before = key_file.read_text()
    unknown = _cli(data_dir, "keys", "rotate", "--activate", "k00000000", "--settle-seconds", "0")
    assert unknown.returncode != 0 and unknown.stderr.strip().count("\n") == 0
    assert "no personal-data key k00000000" in unknown.stderr and key_file.read_text() == before
    again = _cli(data_dir, "keys", "rotate", "--activate", new, "--settle-seconds", "0")
    assert again.returncode != 0 and "already the active" in again.stderr and key_file.read_text() == before
    back = _cli(data_dir, "keys", "rotate", "--activate", old, "--settle-seconds", "0")  # (back to the old key)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["active_key"] == old and json.loads(back.stdout)["left"] == 0


@pytest.mark.skipif(bool(PG_URL), reason="the command runs on its data directory's SQLite database")
def test_a_retired_key_does_not_live_on_in_a_staged_copy_a_killed_change_left(tmp_path):
    """A change of the key file killed before its rename leaves its staged copy of the whole keyring
    (``.pii-keys.json.<hex>.tmp``) beside it; the next change, under the key file's lock, removes it, so
    that ``keys retire`` leaves the retired key in no file of the keys directory."""
    data_dir = tmp_path / "data"
    assert _cli(data_dir, "db", "upgrade").returncode == 0
    network = Network(Settings(data_dir=data_dir))
    make_member(network, make_partner(network), phone="+8613812345670")
    old = network.keyring.active.id
    network.close()
    key_file = data_dir / "keys" / "pii-keys.json"
    stale = key_file.with_name(f".{key_file.name}.0badf00d.tmp")
    stale.write_bytes(key_file.read_bytes())  # what a change killed before its rename leaves
    stale.chmod(0o600)
    assert _cli(data_dir, "keys", "rotate", "--settle-seconds", "0").returncode == 0
    assert _cli(data_dir, "keys", "retire", old).returncode == 0
    holding = [path.name for path in key_file.parent.iterdir() if path.is_file() and old in path.read_text()]
    assert holding == [], holding
