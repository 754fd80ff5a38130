"""`pointsnet keys rotate-signing`: a new network signing key, the old public key kept as retired.

Replacing the key file by hand (the only way there was) made every checkpoint signed before fail
``pointsnet verify`` (``checkpoint_signature``: no signature by <origin> on the note) and every settlement
manifest signed before fail ``pointsnet reconcile``: only the current key was known. After a rotation
what the old key signed still verifies, what the new key signs verifies, and a note signed by a key the
network never had is still an offence.
"""

from __future__ import annotations

import base64
import json
import stat
from datetime import date

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text

from shared.models import NetworkSigningKey
from shared.network import Network
from shared.signing import network_key_id
from shared.transparency.note import note_body, sign_note
from tests.cli.inprocess import pointsnet
from tests.factories import make_member, make_partner

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
CYCLE = date(2026, 11, 20)


@pytest.fixture
def env(network, database_url, clock) -> dict[str, str]:
    return {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
            "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}


@pytest.fixture
def signed_before(network, clock) -> dict:
    """Checkpoints and a settled cycle signed by the network's first key."""
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    book = make_partner(network, "BookMart", **TERMS)
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "coffee-1", points=500)
    network.checkpoint()
    network.burn(book, member, "book-1", 200)
    clock.advance(days=1)
    network.settle(CYCLE)
    network.checkpoint()
    return {"coffee": coffee, "book": book, "member": member,
            "directory": network.settings.data_dir / "settlements" / CYCLE.isoformat()}


def restarted(network) -> Network:
    """The same network as a process started after the rotation sees it (it reads the key file anew)."""
    return Network(network.settings, database_url=network.db.url, clock=network.clock)


def offences(done) -> list[tuple[str, str, str]]:
    return [(o["check"], o["subject"], o["detail"]) for o in json.loads(done.stdout)["offences"]]


def rotate(env) -> dict:
    done = pointsnet("keys", "rotate-signing", env=env)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_rotation_replaces_the_key_and_keeps_no_old_private_key(network, signed_before, env):
    old = network.signing_key
    key_file = network.settings.data_dir / "keys" / "network-ed25519.pem"
    old_pem = key_file.read_bytes()
    rotated = rotate(env)
    assert rotated["retired_key_id"] == network_key_id(old)
    after = restarted(network)
    try:
        assert rotated["signing_key_id"] == network_key_id(after.signing_key) != network_key_id(old)
    finally:
        after.close()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    kept = [path for path in network.settings.data_dir.rglob("*") if path.is_file() and old_pem in path.read_bytes()]
    assert kept == [], "the old private key is still on disk"


def test_after_rotation_verify_passes_on_old_and_new_checkpoints(network, signed_before, env, clock):
    rotate(env)
    after = restarted(network)
    try:
        after.earn(signed_before["coffee"], signed_before["member"], "coffee-2", points=70)
        after.checkpoint()  # signed by the new key
    finally:
        after.close()
    notes = network.tx(lambda tx: tx.session.execute(text("SELECT note FROM checkpoints ORDER BY id")).scalars().all(),
                       readonly=True)
    assert len({base64.b64decode(note.rsplit(" ", 1)[1])[:4] for note in notes}) == 2  # signed by two keys
    done = pointsnet("verify", "--json", env=env)
    assert offences(done) == [] and done.returncode == 0, (done.stdout, done.stderr)


def test_a_note_signed_by_a_key_the_network_never_had_is_still_an_offence(network, signed_before, env):
    rotate(env)
    size, root = network.tx(lambda tx: tx.session.execute(text(
        "SELECT tree_size, root_hash FROM checkpoints ORDER BY id DESC LIMIT 1")).one(), readonly=True)
    name = "pointsnet.local/ledger"
    forged = sign_note(note_body(name, size, bytes(root), network.clock.now()), name, Ed25519PrivateKey.generate())
    network.tx(lambda tx: tx.session.execute(text(
        "INSERT INTO checkpoints (tree_size, root_hash, created_at, note) VALUES (:size, :root, :at, :note)"),
        {"size": size, "root": bytes(root), "at": network.clock.now(), "note": forged}))
    forged_id = network.tx(lambda tx: tx.session.execute(text("SELECT MAX(id) FROM checkpoints")).scalar_one())
    done = pointsnet("verify", "--json", env=env)
    assert done.returncode == 1
    assert offences(done) == [("checkpoint_signature", f"checkpoint {forged_id}",
                               f"no signature by {name} on the note")]


def test_a_manifest_signed_before_rotation_reconciles_after(network, signed_before, env, tmp_path):
    rotate(env)
    done = pointsnet("reconcile", str(signed_before["directory"]), env=env)
    assert done.returncode == 0 and "reconciled" in done.stdout, (done.stdout, done.stderr)
    log = tmp_path / "log.csv"
    log.write_text("reference,kind,points,amount,time\nbook-1,burn,200,190,2026-11-20T02:00:00Z\n")
    done = pointsnet("reconcile", str(signed_before["directory"]), "--partner", signed_before["book"],
                     "--partner-log", str(log), env=env)
    assert "is not verified" not in done.stderr, done.stderr


def test_a_manifest_signed_by_a_key_the_network_never_had_is_refused(network, signed_before, env):
    rotate(env)
    directory = signed_before["directory"]
    signature = json.loads((directory / "manifest.json.sig").read_text())
    stranger = Ed25519PrivateKey.generate()
    signature["key_id"] = network_key_id(stranger)
    (directory / "manifest.json.sig").write_text(json.dumps(signature))
    done = pointsnet("reconcile", str(directory), env=env)
    assert done.returncode == 1 and "signature: manifest.json" in done.stderr, (done.stdout, done.stderr)


def test_a_host_whose_key_was_retired_does_not_rotate_again(network, signed_before, env):
    """A host that missed the rotation (its key file still the old key) is told to take the current key."""
    key_file = network.settings.data_dir / "keys" / "network-ed25519.pem"
    old_pem = key_file.read_bytes()
    rotated = rotate(env)
    current_pem = key_file.read_bytes()
    key_file.unlink()
    key_file.write_bytes(old_pem)
    key_file.chmod(0o600)
    done = pointsnet("keys", "rotate-signing", env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr  # this host's key file to fix
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"{rotated['retired_key_id']} was retired" in done.stderr, done.stderr
    assert key_file.read_bytes() == old_pem != current_pem


def test_rotating_twice_keeps_both_earlier_keys(network, signed_before, env, clock):
    first = rotate(env)
    after = restarted(network)
    try:
        after.checkpoint()
    finally:
        after.close()
    second = rotate(env)
    assert second["retired_key_id"] == first["signing_key_id"]
    done = pointsnet("verify", "--json", env=env)
    assert offences(done) == [] and done.returncode == 0, (done.stdout, done.stderr)


def test_a_configured_key_file_is_replaced_in_place(network, signed_before, env, tmp_path):
    """POINTSNET_SIGNING_KEY_FILE (the systemd layout): the new key goes into that file, nowhere else."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    configured = secrets / "network-signing-key.pem"
    default = network.settings.data_dir / "keys" / "network-ed25519.pem"
    configured.write_bytes(default.read_bytes())
    configured.chmod(0o640)
    default.unlink()
    rotated = rotate({**env, "POINTSNET_SIGNING_KEY_FILE": str(configured)})
    assert not default.exists()
    assert stat.S_IMODE(configured.stat().st_mode) == 0o640  # the old file's mode, kept
    assert sorted(p.name for p in secrets.iterdir()) == [".network-signing-key.pem.lock", "network-signing-key.pem"]
    after = Network(network.settings.model_copy(update={"signing_key_file": configured}), database_url=network.db.url,
                    clock=network.clock)
    try:
        assert network_key_id(after.signing_key) == rotated["signing_key_id"]
    finally:
        after.close()


def _current_and_retired(network) -> tuple[list[str], list[str]]:
    rows = network.tx(lambda tx: tx.session.execute(text(
        "SELECT key_id, retired_at FROM network_signing_keys ORDER BY key_id")).all(), readonly=True)
    return [k for k, when in rows if when is None], [k for k, when in rows if when is not None]


def test_two_hosts_rotating_the_same_key_at_once_one_is_refused(network, signed_before, env, tmp_path, monkeypatch):
    """Found by review: two hosts holding the same key file rotated at once (the key file's lock is each
    host's own). Host B found its key not retired; host A then rotated the same key; B recorded its
    rotation, which retired A's new key: both exited 0, and A signed with a key the network had retired.
    Now the record re-checks, under the database's lock, that the key is still the current one."""
    import shared.keys as keys
    from shared.signing_keys import record_rotation, retired

    key_file = network.settings.data_dir / "keys" / "network-ed25519.pem"
    old_pem = key_file.read_bytes()
    before = sorted(p.name for p in key_file.parent.iterdir() if not p.name.endswith(".lock"))
    host_a = tmp_path / "host-a" / "network-signing-key.pem"
    host_a.parent.mkdir(mode=0o700)
    host_a.write_bytes(old_pem)
    host_a.chmod(0o600)
    a_settings = network.settings.model_copy(update={"signing_key_file": host_a})
    real_rotate = keys.rotate_signing_key
    a_rotated: list[tuple[str, str]] = []

    def a_rotates() -> None:  # host A's whole rotation, start to end
        a_rotated.append(real_rotate(
            a_settings, retired_at=lambda key: network.tx(lambda tx: retired(tx, key), readonly=True),
            record=lambda old, new: network.tx(lambda tx: record_rotation(tx, old, new))))

    def b_rotates(settings, *, retired_at, record):
        def checked_then_a_rotates(key):
            when = retired_at(key)  # B's check: not retired
            a_rotates()  # ... and A rotates before B records
            return when

        return real_rotate(settings, retired_at=checked_then_a_rotates, record=record)

    monkeypatch.setattr(keys, "rotate_signing_key", b_rotates)
    done = pointsnet("keys", "rotate-signing", env=env)
    assert a_rotated, "host A's rotation did not run"
    (old_id, a_new_id), = a_rotated
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"{old_id} was retired" in done.stderr, done.stderr
    assert done.stdout == ""
    assert key_file.read_bytes() == old_pem  # B's key file untouched
    # the staged new key removed (the lock file, holding nothing, stays)
    assert sorted(p.name for p in key_file.parent.iterdir() if not p.name.endswith(".lock")) == before
    assert host_a.read_bytes() != old_pem
    assert _current_and_retired(network) == ([a_new_id], [old_id])  # A's new key is still the current one


def test_a_host_with_a_key_the_network_never_recorded_does_not_rotate(network, signed_before, env):
    """After a rotation, a host whose key file holds some other key (never recorded) is refused: its
    rotation would have retired the network's current key."""
    key_file = network.settings.data_dir / "keys" / "network-ed25519.pem"
    rotated = rotate(env)
    from cryptography.hazmat.primitives import serialization

    stranger = Ed25519PrivateKey.generate()
    stranger_pem = stranger.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
    key_file.write_bytes(stranger_pem)
    done = pointsnet("keys", "rotate-signing", env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr  # this host's key file to fix
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert rotated["signing_key_id"] in done.stderr, done.stderr
    assert key_file.read_bytes() == stranger_pem
    assert _current_and_retired(network) == ([rotated["signing_key_id"]], [rotated["retired_key_id"]])


def _note_by(network, key: Ed25519PrivateKey, signed_at) -> int:
    """A checkpoint row of the latest tree, its note signed by ``key`` at ``signed_at`` (row and note agree)."""
    size, root = network.tx(lambda tx: tx.session.execute(text(
        "SELECT tree_size, root_hash FROM checkpoints ORDER BY id DESC LIMIT 1")).one(), readonly=True)
    name = "pointsnet.local/ledger"
    note = sign_note(note_body(name, size, bytes(root), signed_at), name, key)
    network.tx(lambda tx: tx.session.execute(text(
        "INSERT INTO checkpoints (tree_size, root_hash, created_at, note) VALUES (:size, :root, :at, :note)"),
        {"size": size, "root": bytes(root), "at": signed_at, "note": note}))
    return network.tx(lambda tx: tx.session.execute(text("SELECT MAX(id) FROM checkpoints")).scalar_one())


def test_a_note_a_retired_key_signed_after_its_rollout_is_an_offence(network, signed_before, env):
    """Found by review: a checkpoint note signed by a retired key verified whenever it was signed, so a key
    retired because it leaked could still sign checkpoints verify accepted. A retired key signs for at most
    ROLLOUT after its retirement (hosts not restarted yet); a note it signed later is an offence."""
    from datetime import timedelta

    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from shared.signing_keys import ROLLOUT

    old = load_pem_private_key((network.settings.data_dir / "keys" / "network-ed25519.pem").read_bytes(), None)
    rotated = rotate(env)
    retired_at = network.tx(lambda tx: tx.session.execute(select(NetworkSigningKey.retired_at).where(
        NetworkSigningKey.retired_at.is_not(None))).scalar_one(), readonly=True)
    _note_by(network, old, retired_at + ROLLOUT - timedelta(minutes=1))  # a host not restarted yet: fine
    done = pointsnet("verify", "--json", env=env)
    assert offences(done) == [] and done.returncode == 0, (done.stdout, done.stderr)
    late = _note_by(network, old, retired_at + ROLLOUT + timedelta(minutes=1))
    done = pointsnet("verify", "--json", env=env)
    assert done.returncode == 1, (done.stdout, done.stderr)
    found = offences(done)
    assert [(check, subject) for check, subject, _ in found] == [("checkpoint_signature", f"checkpoint {late}")]
    assert rotated["retired_key_id"] in found[0][2] and "retired" in found[0][2], found


class Killed(BaseException):
    """The process killed (SIGKILL, the power lost): nothing after it runs, no handler."""


def test_a_rotation_stopped_before_its_rename_is_finished_at_the_next_start(network, signed_before, env, monkeypatch):
    """A rotation killed after it recorded the new key and before it renamed the new key's file over the
    key file left the host signing with the retired key, and the network's current private key only in a
    hidden staged file (rotating again was refused). The next start of a writer, or rotate-signing run
    again, finishes the rename: the host signs with the current key and the staged file is gone."""
    from shared import keys

    key_file = network.settings.data_dir / "keys" / "network-ed25519.pem"
    old_id = network_key_id(network.signing_key)
    real_replace = keys.os.replace

    def killed_at_the_rename(source, target, *args, **kwargs):
        if str(target) == str(key_file):
            raise Killed()
        return real_replace(source, target, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(keys.os, "replace", killed_at_the_rename)
        with pytest.raises(Killed):
            pointsnet("keys", "rotate-signing", env=env)
    [staged] = list(key_file.parent.glob(".network-ed25519.pem.*.tmp"))
    current = network.tx(lambda tx: tx.session.execute(select(NetworkSigningKey.key_id).where(
        NetworkSigningKey.retired_at.is_(None))).scalar_one(), readonly=True)
    assert current != old_id and network_key_id(network.signing_key) == old_id  # the key file: the retired key
    after = restarted(network)
    try:
        after.check_keys()  # what serve, serve-api and worker do at start
        assert network_key_id(after.signing_key) == current
    finally:
        after.close()
    assert not staged.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert rotate(env)["retired_key_id"] == current  # and the next rotation is an ordinary one


def test_rotate_signing_run_again_after_a_stopped_rotation_finishes_it(network, signed_before, env, monkeypatch):
    from shared import keys

    key_file = network.settings.data_dir / "keys" / "network-ed25519.pem"
    real_replace = keys.os.replace
    with monkeypatch.context() as patched:
        patched.setattr(keys.os, "replace", lambda source, target, *a, **k: (
            (_ for _ in ()).throw(Killed()) if str(target) == str(key_file) else real_replace(source, target, *a, **k)))
        with pytest.raises(Killed):
            pointsnet("keys", "rotate-signing", env=env)
    done = pointsnet("keys", "rotate-signing", env=env)
    assert done.returncode == 0, done.stderr
    finished = json.loads(done.stdout)
    assert finished["finished_interrupted_rotation"] is True
    after = restarted(network)
    try:
        assert network_key_id(after.signing_key) == finished["signing_key_id"]
    finally:
        after.close()
    assert list(key_file.parent.glob(".network-ed25519.pem.*.tmp")) == []
    assert network.tx(lambda tx: tx.session.execute(select(NetworkSigningKey.key_id).where(
        NetworkSigningKey.retired_at.is_(None))).scalar_one(), readonly=True) == finished["signing_key_id"]


def test_a_stray_staged_file_with_nothing_to_finish_takes_no_lock(network, signed_before, env, monkeypatch):
    """A staged file a rotation left before it recorded anything (the host's key still current) is
    nothing to finish: a writer starts without taking the key file's lock, which a key directory the
    services' user cannot write would refuse."""
    from shared import keys

    key_file = network.settings.data_dir / "keys" / "network-ed25519.pem"
    rotate(env)  # a rotation recorded: the host holds the current key
    stray = key_file.with_name(f".{key_file.name}.0badf00d.tmp")
    stray.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def no_lock(path):
        raise PermissionError(13, f"cannot make the lock file beside {path}")

    monkeypatch.setattr(keys, "_locked", no_lock)
    after = restarted(network)
    try:
        after.check_keys()
    finally:
        after.close()
    assert stray.exists()
