"""`pointsnet keys rotate` with a key file that belongs to the services' user (deploy/systemd:
User=pointsnet; keys owner-only in /etc/pointsnet/secrets/), run by an operator from another account:
the new key file keeps the old one's owner, group and mode, or nothing changes."""

from __future__ import annotations

import json
import os
import stat

import pytest

from shared.keys import new_keyring_json
from tests.cli.inprocess import pointsnet as run_pointsnet

SERVICE_UID = SERVICE_GID = 10001  # deploy/Dockerfile's pointsnet user


def _key_file(tmp_path, mode: int, owner: tuple[int, int] | None = None):
    key_file = tmp_path / "secrets" / "pii-keys.json"
    key_file.parent.mkdir()
    key_file.write_text(json.dumps(new_keyring_json()))
    if owner:
        os.chown(key_file, *owner)
    os.chmod(key_file, mode)
    env = {"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None,
           "POINTSNET_PII_KEYS_FILE": str(key_file)}
    assert run_pointsnet("db", "upgrade", env=env).returncode == 0
    return key_file, env


def _owner_and_mode(path):
    status = path.stat()
    return status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)


def test_a_rotation_keeps_the_key_files_mode(tmp_path):
    """A key file the operator made group-readable (the services' group) stays so."""
    key_file, env = _key_file(tmp_path, 0o640)
    before = _owner_and_mode(key_file)
    done = run_pointsnet("keys", "rotate", "--settle-seconds", "0", env=env)
    assert done.returncode == 0, done.stderr[-400:]
    assert len(json.loads(key_file.read_text())["keys"]) == 2  # rotated: the file was replaced
    assert _owner_and_mode(key_file) == before == (os.geteuid(), os.getegid(), 0o640)


@pytest.mark.skipif(os.geteuid() != 0, reason="gives the key file to another user, as an install does")
def test_a_rotation_run_as_root_leaves_the_key_file_to_the_services_user(tmp_path):
    key_file, env = _key_file(tmp_path, 0o600, owner=(SERVICE_UID, SERVICE_GID))
    done = run_pointsnet("keys", "rotate", "--settle-seconds", "0", env=env)
    assert done.returncode == 0, done.stderr[-400:]
    assert len(json.loads(key_file.read_text())["keys"]) == 2
    assert _owner_and_mode(key_file) == (SERVICE_UID, SERVICE_GID, 0o600)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a key file that belongs to another user")
def test_a_rotation_that_cannot_give_the_new_file_to_its_owner_changes_nothing(tmp_path, monkeypatch):
    """An operator who may not chown (not root, not the owner) is refused in one line naming the
    owner; the key file the services read stays as it was, and no staging file is left behind."""
    key_file, env = _key_file(tmp_path, 0o600, owner=(SERVICE_UID, SERVICE_GID))
    before = key_file.read_bytes()

    def fchown(fd, uid, gid):  # what the kernel answers an unprivileged user
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "fchown", fchown)
    done = run_pointsnet("keys", "rotate", "--settle-seconds", "0", env=env)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-400:]
    refusal = done.stderr.strip().splitlines()[-1]
    assert refusal.startswith("error: cannot change the personal-data key file: "), done.stderr
    assert f"{key_file} belongs to" in refusal and f"uid {SERVICE_UID}" in refusal, refusal
    assert key_file.read_bytes() == before and _owner_and_mode(key_file) == (SERVICE_UID, SERVICE_GID, 0o600)
    assert sorted(p.name for p in key_file.parent.iterdir()) == [".pii-keys.json.lock", "pii-keys.json"]


def test_the_systemd_walkthrough_makes_the_user_directories_and_key_files_the_units_need(tmp_path):
    """docs/operations.md, "A plain VM with systemd": the units run as a user that must exist, write only
    the data directory (which must exist: ProtectSystem=strict, ReadWritePaths=), and read key files the
    env file names — a configured key file is never generated. The walkthrough said "keys in
    /etc/pointsnet/secrets/ (owner-only)" and nothing of the user, the directories or how to make them."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "operations.md").read_text()
    start = guide.index("### A plain VM with systemd")
    walkthrough = guide[start:guide.index("\n### ", start + 1)]
    units = {path.name: path.read_text() for path in (root / "deploy" / "systemd").glob("*.service")}
    env = dict(line.split("=", 1) for line in (root / "deploy" / "systemd" / "pointsnet.env.example").read_text()
               .splitlines() if line and not line.startswith("#"))
    [user] = {m for text in units.values() for m in re.findall(r"^User=(\S+)$", text, re.M)}
    writable = {m for text in units.values() for m in re.findall(r"^ReadWritePaths=(\S+)$", text, re.M)}
    [env_file] = {m for text in units.values() for m in re.findall(r"^EnvironmentFile=(\S+)$", text, re.M)}
    assert writable == {env["POINTSNET_DATA_DIR"]}
    assert re.search(rf"useradd --system .*\b{user}\b", walkthrough.replace("\\\n", " ")), "no service user made"
    assert f"install -d -o {user} -g {user} -m 0750 {env['POINTSNET_DATA_DIR']}" in walkthrough
    secrets = Path(env["POINTSNET_SIGNING_KEY_FILE"]).parent
    assert secrets == Path(env["POINTSNET_PII_KEYS_FILE"]).parent
    assert f"install -d -o {user} -g {user} -m 0700 {secrets}" in walkthrough  # rotation writes beside the file
    assert f"-m 0640 deploy/systemd/pointsnet.env.example {env_file}" in walkthrough
    assert f"install -d -o root -g root -m 0755 {Path(env_file).parent}" in walkthrough
    # the key files are made by the service user (owner-only) where the env file names them
    made = run_pointsnet("keys", "init", env={"POINTSNET_DATA_DIR": str(tmp_path / "new"),
                                             "POINTSNET_DATABASE_URL": None})
    assert made.returncode == 0, made.stderr[-400:]
    for generated, configured in (("network-ed25519.pem", "POINTSNET_SIGNING_KEY_FILE"),
                                  ("pii-keys.json", "POINTSNET_PII_KEYS_FILE")):
        assert stat.S_IMODE((tmp_path / "new" / "keys" / generated).stat().st_mode) == 0o600
        assert f"runuser -u {user} -- mv {secrets}/new/keys/{generated} {env[configured]}" in walkthrough
