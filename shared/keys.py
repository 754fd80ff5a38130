"""The network's keys: Ed25519 signing key and the personal-data keyring.

Taken from configuration (a key file, or JSON in the environment) or, on first
start, generated into ``<data dir>/keys/`` with owner-only permissions. Never from
the repository. A process that only reads opens them with ``create=False``: a key
missing there is a configuration error, never a new key (a read-only replica host, a
mistyped data directory).
"""

from __future__ import annotations

import base64
import errno
import fcntl
import grp
import json
import os
import pwd
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from glob import escape as glob_escape
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.config import KeyConfigurationError, Settings


def _make_directory(directory: Path, mode: int = 0o777) -> None:
    """``mkdir -p``, the last directory made with ``mode`` (0o700 for ``keys/``: owner-only, as its files;
    the umask applies to the others); as root, each directory made belongs to its parent's owner and group
    (a command run from a root shell over the services' data directory must not leave them a ``keys/``
    they cannot use)."""
    if directory.is_dir():
        return
    _make_directory(directory.parent)
    try:
        directory.mkdir(mode=mode)
    except FileExistsError:
        if not directory.is_dir():
            raise
        return
    if os.geteuid() == 0:
        parent = directory.parent.stat()
        # never through a symlink: whoever owns the parent could swap the new directory for one
        os.chown(directory, parent.st_uid, parent.st_gid, follow_symlinks=False)


def _own_like_directory(fd: int, directory: Path) -> None:
    """As root, give a file just made (or a lock file left by an earlier root run) the owner and group of
    its directory: the services' user, who must be able to open it next (docs/operations.md). Files made
    by any other user are theirs already; nothing else is changed (the mode stays)."""
    if os.geteuid() != 0:
        return
    where, ours = directory.stat(), os.fstat(fd)
    if not stat.S_ISREG(ours.st_mode) or ours.st_nlink != 1:
        # a hard link to another file, planted by whoever owns the directory: never given away
        raise PermissionError(errno.EPERM, f"{directory} holds a file linked elsewhere where a key or lock file "
                              "belongs: remove it", str(directory))
    if (ours.st_uid, ours.st_gid) != (where.st_uid, where.st_gid):
        os.fchown(fd, where.st_uid, where.st_gid)


def _write_private(path: Path, data: bytes) -> None:
    _make_directory(path.parent, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        _own_like_directory(fd, path.parent)
        handle.write(data)


def _create_once(path: Path, data: bytes) -> None:
    """Create a key file that does not exist yet, whole or not at all: written under a private
    name, then linked into place (which fails if another process or thread got there first).
    A reader never sees a half-written key file, and the first writer's key wins."""
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        _write_private(staging, data)
    except OSError as exc:  # only generated keys are created: they go into the data directory
        reason = "a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError)) else (
            exc.strerror or exc)
        raise KeyConfigurationError(f"POINTSNET_DATA_DIR: cannot write the network's keys into {path.parent} "
                                    f"({reason})") from None
    try:
        os.link(staging, path)
    except FileExistsError:
        pass
    finally:
        staging.unlink()


def _read_configured(path: Path, variable: str, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyConfigurationError(f"{variable}: {what} {path} does not exist") from None
    except OSError as exc:
        raise KeyConfigurationError(f"{variable}: cannot read {what} {path} ({exc.strerror or exc})") from None


class KeyNotMade(KeyConfigurationError):
    """A key the network generates on first start is missing, and this process makes none (it only reads)."""


def _not_made(what: str, path: Path) -> KeyNotMade:
    """A generated key a read-only command found missing: it makes none (docs/operations.md, "Keys")."""
    return KeyNotMade(f"{what} {path} does not exist, and a command that only reads makes no keys: "
                      "is POINTSNET_DATA_DIR the network's data directory? (`pointsnet keys init` makes "
                      "a new network's keys)")


KeysInUse = Callable[[], "str | None"]
"""What a network's database already holds that its keys made ("signed checkpoints", "sealed members"),
or None for a brand-new network: asked before a first start generates a key."""


def _refuse_if_in_use(in_use: KeysInUse | None, directory: Path) -> None:
    """A key missing from this host is generated only for a brand-new network: a network that has used
    its keys needs them given to this host, not new ones (new ones would enrol members again and sign
    checkpoints that ``pointsnet verify`` rejects)."""
    found = in_use() if in_use is not None else None
    if found:
        raise KeyConfigurationError(f"no keys in {directory}, but this network's database already has them in use "
                                    f"({found}): give this host the network's keys (POINTSNET_DATA_DIR, or the "
                                    "key variables)")


def signing_key_file(settings: Settings) -> Path:
    """Where the network's signing key lives: the configured file, or ``keys/`` of the data directory."""
    return settings.signing_key_file or settings.data_dir / "keys" / "network-ed25519.pem"


def load_signing_key(settings: Settings, *, create: bool = True,
                     in_use: KeysInUse | None = None) -> Ed25519PrivateKey:
    """The network's signing key; generated on first start unless ``create`` is False (a command that
    only reads: a missing key is a KeyConfigurationError then) or ``in_use`` says the network's database
    holds what its keys made already (a KeyConfigurationError too)."""
    path = signing_key_file(settings)
    if not path.exists() and not settings.signing_key_file:
        if not create:
            raise _not_made("the network's signing key", path)
        _refuse_if_in_use(in_use, path.parent)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        _create_once(path, pem)  # if another process or thread got there first, its key wins
    variable = "POINTSNET_SIGNING_KEY_FILE" if settings.signing_key_file else "the network's signing key"
    data = _read_configured(path, variable, "signing key file")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyConfigurationError(f"{variable}: {path} is not an unencrypted Ed25519 private key (PEM)")
    return key


@dataclass(frozen=True)
class PiiKey:
    id: str
    encryption: bytes  # AES-256-GCM key
    index: bytes  # HMAC-SHA256 key of the blind index


# Every ciphertext is ``v1.<key id>.<base64>`` (split at its dots) and every blind-index value
# ``<key id>:<64 hex>`` in a VARCHAR(80) column: an id holds no separator and at most 15 characters.
KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,15}")
KEY_ID_RULE = "1 to 15 letters, digits, '_' or '-'"


def _decode_keyring(data: dict) -> tuple[str, dict[str, PiiKey]]:
    for position, key_id in enumerate(data["keys"], start=1):
        if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
            # the id is not echoed: a keyring written the wrong way round would hold key material there
            raise KeyConfigurationError(
                f"personal-data key id number {position} in \"keys\" is not {KEY_ID_RULE} (each id is part of "
                "every ciphertext and blind-index value sealed under its key)")
    keys = {
        key_id: PiiKey(key_id, base64.b64decode(value["encryption"]), base64.b64decode(value["index"]))
        for key_id, value in data["keys"].items()
    }
    if data["active"] not in keys:
        raise ValueError("the active personal-data key is not in the keyring")
    for key in keys.values():
        if len(key.encryption) != 32 or len(key.index) != 32:
            raise ValueError(f"personal-data key {key.id} must hold two 32-byte keys")
    return data["active"], keys


def new_keyring_json() -> dict:
    key_id = "k" + secrets.token_hex(4)
    return {"active": key_id, "keys": {key_id: {
        "encryption": base64.b64encode(secrets.token_bytes(32)).decode(),
        "index": base64.b64encode(secrets.token_bytes(32)).decode(),
    }}}


def _keyring_from(text: str | bytes, variable: str) -> tuple[str, dict[str, PiiKey]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyConfigurationError(f"{variable}: not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise KeyConfigurationError(f"{variable}: not valid JSON (not UTF-8)") from None
    try:
        return _decode_keyring(data)
    except ValueError as exc:  # binascii.Error (not base64) is a ValueError too
        raise KeyConfigurationError(f"{variable}: {exc}") from None
    except (KeyError, TypeError, AttributeError):
        raise KeyConfigurationError(f'{variable}: not a keyring ({{"active": …, "keys": {{…}}}})') from None


def load_pii_keyring(settings: Settings, *, create: bool = True,
                     in_use: KeysInUse | None = None) -> tuple[str, dict[str, PiiKey]]:
    """The personal-data keyring; generated on first start unless ``create`` is False or ``in_use``
    refuses (as ``load_signing_key``)."""
    if settings.pii_keys:
        return _keyring_from(settings.pii_keys, "POINTSNET_PII_KEYS")
    path = pii_key_file(settings)
    if not path.exists() and not settings.pii_keys_file:
        if not create:
            raise _not_made("the personal-data keyring", path)
        _refuse_if_in_use(in_use, path.parent)
        _create_once(path, json.dumps(new_keyring_json(), indent=2).encode())
    variable = "POINTSNET_PII_KEYS_FILE" if settings.pii_keys_file else "the personal-data keyring"
    return _keyring_from(_read_configured(path, variable, "personal-data key file"), variable)


def pii_key_file(settings: Settings) -> Path | None:
    """Where the personal-data keyring lives, or None when it comes from the environment."""
    if settings.pii_keys:
        return None
    return settings.pii_keys_file or settings.data_dir / "keys" / "pii-keys.json"


def keyring_with_new_key(data: dict) -> tuple[dict, str]:
    """Phase 1 of a rotation: the keyring plus a fresh key that is NOT active yet.

    Every process given this keyring looks members up under the new key too, but still seals and
    indexes under the active one, so a process that does not know the new key yet still finds
    everyone enrolled meanwhile. Make the key active (``keyring_with_active_key``) only once every
    process has this keyring."""
    fresh = new_keyring_json()
    key_id = fresh["active"]
    return {"active": data["active"], "keys": {**data["keys"], **fresh["keys"]}}, key_id


def keyring_with_active_key(data: dict, key_id: str) -> dict:
    """Phase 2 of a rotation: the same keys, ``key_id`` (already in the keyring) made active; the
    earlier keys stay to read and look up what they sealed."""
    if key_id not in data["keys"]:
        raise ValueError(f"no personal-data key {key_id} in the keyring: add it with `pointsnet keys rotate` "
                         "and give every process the keyring with it first")
    if key_id == data["active"]:
        raise ValueError(f"{key_id} is already the active personal-data key")
    return {"active": key_id, "keys": dict(data["keys"])}


def write_keyring(path: Path, data: dict) -> None:
    """Replace the key file atomically, so a process reading it never sees half a file. The new file
    keeps the owner, group and mode of the one it replaces (a new one is owner-only): a rotation run
    from a root shell must not take the key file away from the services' user. Where the new file
    cannot be given to that owner, nothing is replaced."""
    _decode_keyring(data)  # refuse to write a keyring that would not load
    staging = _stage_replacement(path, json.dumps(data, indent=2).encode())
    try:
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def _stage_replacement(path: Path, data: bytes) -> Path:
    """The next content of ``path`` in a private file beside it, with the owner, group and mode of the
    file it is to replace (a new one is owner-only), on disk: ``os.replace`` it over ``path``. Where it
    cannot be given to that owner, nothing is left behind."""
    try:
        kept = path.stat()
    except FileNotFoundError:
        kept = None
    _make_directory(path.parent)
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if kept is not None:
                ours = os.fstat(fd)
                if (ours.st_uid, ours.st_gid) != (kept.st_uid, kept.st_gid):
                    try:
                        os.fchown(fd, kept.st_uid, kept.st_gid)
                    except PermissionError:
                        owner = _owner_name(kept)
                        raise PermissionError(errno.EPERM, f"{path} belongs to {owner}, and this user cannot give "
                                              f"the new file to it: run the command as {owner.split(':')[0]} "
                                              "or as root", str(path)) from None
                os.fchmod(fd, stat.S_IMODE(kept.st_mode))
            else:
                _own_like_directory(fd, path.parent)
            handle.flush()
            os.fsync(fd)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return staging


def _owner_name(status: os.stat_result) -> str:
    """user:group (uid N, gid N) of a file, the names where the system knows them."""
    try:
        user = pwd.getpwuid(status.st_uid).pw_name
    except KeyError:
        user = str(status.st_uid)
    try:
        group = grp.getgrgid(status.st_gid).gr_name
    except KeyError:
        group = str(status.st_gid)
    return f"{user}:{group} (uid {status.st_uid}, gid {status.st_gid})"


@contextmanager
def _changing(settings: Settings) -> Iterator[Path]:
    """The personal-data key file, locked against another command changing it at the same moment (``_locked``)."""
    path = pii_key_file(settings)
    if path is None:
        raise ValueError("personal-data keys come from the environment (POINTSNET_PII_KEYS)")
    load_pii_keyring(settings)  # generates the file on first use
    with _locked(path):
        # a change killed before its rename left its staged copy of the whole keyring: under the lock no
        # other change is writing one, so any found is stale, and a key retired here must not live on in it
        for staged in _staged_files(path):
            staged.unlink(missing_ok=True)
        yield path


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """A key file, locked against another command changing it at the same moment: two changes
    each reading the file before the other wrote it would lose one of the keys.

    The lock file stays beside the key file. Made (or found) by root, it is given the directory's owner
    and group, so that the next change, run as the services' user, can open it; a lock file root left
    before that (root:root, owner-only) is refused to that user in one line saying what to do."""
    lock = path.with_name(f".{path.name}.lock")
    try:
        # O_NOFOLLOW: the directory's owner could plant the lock's name as a symlink to any file, which
        # root would then open and give to that owner (_own_like_directory)
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except PermissionError:
        try:
            owner = _owner_name(lock.stat())
        except OSError:
            raise PermissionError(errno.EACCES, f"cannot make the lock file {lock} (the key file's directory "
                                  "is not writable by this user)", str(lock)) from None
        raise PermissionError(errno.EACCES, f"the lock file {lock} belongs to {owner} and this user cannot "
                              "open it: remove it (it holds nothing), or run the command once as root, which "
                              "gives it to the directory's owner", str(lock)) from None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise PermissionError(errno.EPERM, f"the lock file {lock} is a symbolic link, which a key change never "
                              "follows: remove it (a lock file holds nothing)", str(lock)) from None
    try:
        try:
            _own_like_directory(fd, lock.parent)
        except OSError:  # the lock works for this command all the same
            pass
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def add_pii_key(settings: Settings) -> str:
    """Phase 1: add a new personal-data key to the key file, not active yet; returns its id."""
    with _changing(settings) as path:
        data, key_id = keyring_with_new_key(json.loads(path.read_text()))
        write_keyring(path, data)
    return key_id


def activate_pii_key(settings: Settings, key_id: str) -> None:
    """Phase 2: make a key already in the key file the active one."""
    with _changing(settings) as path:
        write_keyring(path, keyring_with_active_key(json.loads(path.read_text()), key_id))


def retire_pii_key(settings: Settings, key_id: str) -> None:
    """Remove a key that no ciphertext or index value uses any more (checked by the caller)."""
    with _changing(settings) as path:
        data = json.loads(path.read_text())
        if key_id == data["active"]:
            raise ValueError(f"{key_id} is the active key; rotate first")
        if key_id not in data["keys"]:
            raise ValueError(f"no personal-data key {key_id}")
        del data["keys"][key_id]
        write_keyring(path, data)


class SigningKeyRetired(KeyConfigurationError):
    """This host's signing key was retired by an earlier rotation: it needs the current key, not a new one."""


class SigningKeyNotCurrent(KeyConfigurationError):
    """This host's signing key was never recorded, and the network's current key is another one."""


def rotate_signing_key(settings: Settings, *, retired_at: Callable[[Ed25519PublicKey], "str | None"],
                       record: Callable[[Ed25519PublicKey, Ed25519PublicKey], None]) -> tuple[str, str]:
    """Replace the network's signing key with a new one; returns (old key id, new key id).

    Under the key file's lock: ``retired_at`` (when an earlier rotation retired the key this host holds,
    or None) refuses a host that missed a rotation; the new key is written beside the key file (its owner,
    group and mode) and on disk; ``record`` keeps both PUBLIC keys (in the database: the old one retired,
    the new one current), and only then is the new file renamed over the old one. ``record`` checks again,
    under the database's lock, that the old key is still the network's current one (another host holding
    the same key file may have rotated it meanwhile: this lock is the host's own) and refuses otherwise
    (SigningKeyRetired, SigningKeyNotCurrent). A failure before ``record`` commits changes nothing; the old
    private key is gone once the new one is in place: it is never kept."""
    from shared.signing import network_key_id

    path = signing_key_file(settings)
    load_signing_key(settings, create=False)  # a missing or unusable key file: one line, before any lock file
    with _locked(path):
        old = load_signing_key(settings, create=False)  # as it is under the lock
        when = retired_at(old.public_key())
        if when:
            raise SigningKeyRetired(f"this host's signing key {network_key_id(old)} was retired at {when} by an "
                                    "earlier rotation: give this host the network's current signing key "
                                    "instead of rotating again")
        new = Ed25519PrivateKey.generate()
        staging = _stage_replacement(path, new.private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
        try:
            record(old.public_key(), new.public_key())
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        try:
            os.replace(staging, path)
        except OSError as exc:  # recorded already: the new key must not be lost
            raise OSError(exc.errno, f"the new signing key {network_key_id(new)} is recorded and written to "
                          f"{staging}, but could not replace {path} ({exc.strerror or exc}): move it there",
                          str(path)) from None
        _sync_directory(path.parent)
    return network_key_id(old), network_key_id(new)


def finish_interrupted_rotation(settings: Settings, current: Callable[[], "set[str]"]) -> str | None:
    """Finish a rotation stopped between its two steps; returns the key id it put in place, or None.

    ``rotate_signing_key`` records the new key (the old one retired) and then renames the new key's
    staged file over the key file. Stopped in between (killed, the power lost), it leaves the key file
    holding the retired key and the network's current key only in the staged file beside it
    (``.network-ed25519.pem.<hex>.tmp``): the host would go on signing with the retired key until
    partners' SDKs reject it, and the current private key would be lost with the stray file. So when the
    key file's key is not one of ``current`` (the key ids the network records as current) and a staged
    file holds one that is, that file is renamed over the key file, under the key file's lock."""
    from shared.signing import network_key_id

    path = signing_key_file(settings)

    def needed() -> bool:  # a staged file, and the key file's key not current while some key is
        if not _staged_files(path):
            return False
        ids = current()
        try:
            held = network_key_id(load_signing_key(settings, create=False))
        except KeyConfigurationError:
            held = None
        return bool(ids) and held not in ids

    # asked first without the lock: a host with nothing to finish (a stray staged file of a rotation that
    # never recorded, a key directory the services' user cannot write) starts as it did
    if not needed():
        return None
    with _locked(path):
        if not needed():  # finished meanwhile by another process of this host
            return None
        ids = current()
        for staged in _staged_files(path):
            try:
                key = serialization.load_pem_private_key(staged.read_bytes(), password=None)
            except (OSError, ValueError, TypeError):
                continue
            if isinstance(key, Ed25519PrivateKey) and network_key_id(key) in ids:
                os.replace(staged, path)
                _sync_directory(path.parent)
                return network_key_id(key)
    return None


def _staged_files(path: Path) -> list[Path]:
    """The files ``_stage_replacement`` leaves beside ``path`` until they are renamed over it."""
    try:
        return sorted(path.parent.glob(f".{glob_escape(path.name)}.*.tmp"))
    except OSError:
        return []


def _sync_directory(directory: Path) -> None:
    """The rename of a key file on disk too (best effort: not every file system opens a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
