"""`pointsnet keys init` and `keys rotate` run as root in a directory that belongs to the services' user
(docs/operations.md: /etc/pointsnet/secrets is pointsnet:pointsnet 0700, the data directory pointsnet's
too) leave nothing there that the services' user cannot open: the rotation's lock file and any key file
or directory they make belong to the directory's owner and group."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from shared.config import Settings
from shared.keys import new_keyring_json
from tests.cli.inprocess import pointsnet as run_pointsnet

SERVICE_UID = SERVICE_GID = 10001  # deploy/Dockerfile's pointsnet user

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs the commands as root over another user's files")


@pytest.fixture
def tmp_path():
    """A scratch directory the services' user can reach (pytest's own is under a root-only one)."""
    made = Path(tempfile.mkdtemp(prefix="pointsnet-keys-"))
    made.chmod(0o711)
    yield made
    shutil.rmtree(made)


def _owner(path) -> tuple[int, int]:
    status = path.stat()
    return status.st_uid, status.st_gid


def _opens_as(uid: int, gid: int, path, flags: int) -> bool:
    """Whether that user can open the file (in a forked child that drops to it)."""
    pid = os.fork()
    if pid == 0:  # the child: no Python cleanup, only an exit code
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.close(os.open(path, flags))
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def test_a_rotation_run_as_root_leaves_a_lock_file_the_services_user_can_open(tmp_path):
    secrets, key_file = _services_key_file(tmp_path)
    os.chmod(key_file, 0o600)
    env = {"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None,
           "POINTSNET_PII_KEYS_FILE": str(key_file)}
    assert run_pointsnet("db", "upgrade", env=env).returncode == 0
    done = run_pointsnet("keys", "rotate", "--settle-seconds", "0", env=env)
    assert done.returncode == 0, done.stderr[-400:]
    lock = secrets / ".pii-keys.json.lock"
    assert _owner(lock) == (SERVICE_UID, SERVICE_GID)
    assert _opens_as(SERVICE_UID, SERVICE_GID, lock, os.O_WRONLY)  # the next rotation, run as the user
    assert _owner(key_file) == (SERVICE_UID, SERVICE_GID)


def test_a_lock_file_an_earlier_root_run_left_is_given_back_by_the_next_root_run(tmp_path):
    """A lock file a version before this one left as root:root 0600: the next command run as root gives
    it to the directory's owner."""
    secrets, key_file = _services_key_file(tmp_path)
    lock = secrets / ".pii-keys.json.lock"
    os.close(os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600))  # root:root, as left before
    env = {"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None,
           "POINTSNET_PII_KEYS_FILE": str(key_file)}
    assert run_pointsnet("db", "upgrade", env=env).returncode == 0
    assert run_pointsnet("keys", "rotate", "--settle-seconds", "0", env=env).returncode == 0
    assert _owner(lock) == (SERVICE_UID, SERVICE_GID)


def test_keys_init_run_as_root_makes_keys_the_services_user_can_read(tmp_path):
    """`pointsnet keys init` as root over the services' data directory made keys/ and both key files
    root's (owner-only): every service then failed to read its keys."""
    data = tmp_path / "data"
    data.mkdir(mode=0o750)
    os.chown(data, SERVICE_UID, SERVICE_GID)
    made = run_pointsnet("keys", "init", env={"POINTSNET_DATA_DIR": str(data), "POINTSNET_DATABASE_URL": None})
    assert made.returncode == 0, made.stderr[-400:]
    keys = data / "keys"
    assert _owner(keys) == (SERVICE_UID, SERVICE_GID)
    for name in ("network-ed25519.pem", "pii-keys.json"):
        assert _owner(keys / name) == (SERVICE_UID, SERVICE_GID)
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
        assert _opens_as(SERVICE_UID, SERVICE_GID, keys / name, os.O_RDONLY)
    assert sorted(p.name for p in keys.iterdir()) == ["network-ed25519.pem", "pii-keys.json"]  # no staging left


def _services_key_file(tmp_path) -> tuple[Path, Path]:
    """(secrets/, its personal-data key file), both the services' user's, as docs/operations.md sets them up."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    os.chown(secrets, SERVICE_UID, SERVICE_GID)
    key_file = secrets / "pii-keys.json"
    key_file.write_text(json.dumps(new_keyring_json()))
    os.chown(key_file, SERVICE_UID, SERVICE_GID)
    return secrets, key_file


def _services_secrets(tmp_path) -> tuple[Path, Settings]:
    secrets, key_file = _services_key_file(tmp_path)
    return secrets, Settings(pii_keys_file=key_file, pii_keys=None, data_dir=tmp_path / "data")


def _root_only(tmp_path) -> Path:
    victim = tmp_path / "root-only"  # stands for /etc/shadow, root's authorized_keys, ...
    victim.write_text("root's")
    victim.chmod(0o600)
    return victim


def test_a_lock_file_planted_as_a_symlink_is_refused_and_its_target_not_given_away(tmp_path):
    """The services' user owns the directory, so it can put a symlink where the lock file goes: root must
    neither follow it nor hand its target over (found in review)."""
    from shared.keys import _changing

    secrets, settings = _services_secrets(tmp_path)
    victim = _root_only(tmp_path)
    (secrets / ".pii-keys.json.lock").symlink_to(victim)
    with pytest.raises(PermissionError, match="symbolic link"):
        with _changing(settings):
            pass
    assert _owner(victim) == (0, 0) and victim.read_text() == "root's"


def test_a_lock_file_planted_as_a_hard_link_is_not_given_away(tmp_path):
    from shared.keys import _changing

    secrets, settings = _services_secrets(tmp_path)
    victim = _root_only(tmp_path)
    os.link(victim, secrets / ".pii-keys.json.lock")
    with _changing(settings):
        pass
    assert _owner(victim) == (0, 0) and victim.read_text() == "root's"
