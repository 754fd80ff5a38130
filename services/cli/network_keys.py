"""The network's own keys: response signing and the personal-data keyring (rotation in two phases)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from shared.config import MAX_BATCH_SIZE

from services.cli import MISTAKE, TROUBLE, network_keys_app, err, fail, _logging, _network


@network_keys_app.command("init")
def keys_init() -> None:
    """Create the network's keys in the data directory if they are not configured; print the public key id.
    Run once before starting several processes on one data directory."""
    from shared.config import get_settings as settings_now
    from shared.keys import load_pii_keyring, load_signing_key
    from shared.signing import network_key_id

    settings = settings_now()
    key = load_signing_key(settings)
    active, _ = load_pii_keyring(settings)
    print(json.dumps({"signing_key_id": network_key_id(key), "pii_active_key": active}))


@network_keys_app.command("rotate-signing")
def keys_rotate_signing() -> None:
    """Replace the network's Ed25519 signing key with a new one; the old PUBLIC key is kept as retired.

    The new key goes into this host's key file (POINTSNET_SIGNING_KEY_FILE or <data>/keys/), replacing the
    old private key, which is not kept. Both public keys are recorded in the database, so every API host
    serves them at /v1/network/keys and `pointsnet verify` and `pointsnet reconcile` still check what the
    old key signed. Then restart this host's processes, and give every other host that signs the new key
    file (docs/operations.md, "Rotating the network signing key")."""
    from shared.config import get_settings as settings_now
    from shared.keys import rotate_signing_key
    from shared.signing_keys import record_rotation, retired

    settings = settings_now()
    network = _network()

    def retired_at(key) -> str | None:
        when = network.tx(lambda tx: retired(tx, key), readonly=True)
        return when.isoformat(timespec="seconds") if when else None

    try:
        finished = network.finish_interrupted_rotation()
        if finished:  # the rotation asked for before was stopped part way: this one finishes it
            print(json.dumps({"signing_key_id": finished, "finished_interrupted_rotation": True}))
            err.print(f"an earlier rotation was stopped before this host's key file held its new key: it is "
                      f"finished, and the network signs with {finished}. Restart every process on this host, "
                      "then give every other host that signs the new key file and restart it.",
                      highlight=False, markup=False)
            return
        old, new = rotate_signing_key(settings, retired_at=retired_at,
                                      record=lambda old, new: network.tx(lambda tx: record_rotation(tx, old, new)))
    except OSError as exc:
        fail(f"cannot change the network's signing key file: {exc.strerror or exc}", TROUBLE)
    print(json.dumps({"signing_key_id": new, "retired_key_id": old}))
    err.print(f"the network now signs with {new}, in this host's key file; {old} is retired (its public key "
              "stays at /v1/network/keys). Restart every process on this host, then give every other host that "
              "signs the new key file and restart it.", highlight=False, markup=False)


# the longest --settle-seconds: every process re-reads the key file on its next use of the keyring
MAX_SETTLE_SECONDS = 3600


@network_keys_app.command("rotate")
def keys_rotate(
    batch_size: int = typer.Option(500, min=1, max=MAX_BATCH_SIZE, help="Members re-sealed per transaction."),
    activate: Optional[str] = typer.Option(None, "--activate", metavar="KEY_ID",
                                           help="Skip phase 1: make KEY_ID, added by an earlier `pointsnet keys "
                                                "rotate` and known to every process by now, the active key "
                                                "(with POINTSNET_PII_KEYS: stage that keyring)."),
    reencrypt_only: bool = typer.Option(False, "--reencrypt-only",
                                        help="Change no key: re-seal under the active key (after the key change "
                                             "was deployed in POINTSNET_PII_KEYS, or to resume)."),
    settle_seconds: float = typer.Option(5.0, min=0, max=MAX_SETTLE_SECONDS,
                                         help="Wait after each change of the key file, so that every process reads "
                                              "it and requests in flight with the previous keyring finish first."),
) -> None:
    """Rotate the personal-data key in two phases, then re-encrypt every ciphertext and re-compute every
    blind-index value under the new key, in bounded batches, while the network runs.

    Phase 1 adds the new key inactive (every process looks members up under it, nobody seals with it);
    phase 2 makes it active once every process knows it, so no process can miss a member enrolled by
    another and enrol the same person twice. With a key file the command does both, waiting
    --settle-seconds after each; with POINTSNET_PII_KEYS it stages each phase for the operator to deploy.
    Old keys stay in the keyring (lookups try every key) until `pointsnet keys retire`."""
    import time

    from shared.config import get_settings as settings_now
    from shared.keys import activate_pii_key, add_pii_key, keyring_with_active_key, load_pii_keyring, pii_key_file
    from shared.members.rotation import require_keys, stale_count

    _logging()
    if activate is not None and reencrypt_only:
        fail("--activate and --reencrypt-only do not go together: activate first, then re-encrypt")
    settings = settings_now()
    load_pii_keyring(settings)  # a keyring that does not load is a configuration error, before any change
    if pii_key_file(settings) is None:
        if not reencrypt_only:
            _stage_next_keyring(settings, activate)
            return
    # the database, before the key file changes: one that cannot be reached (or is not current) stops
    # the command here, not between two phases with the keyring half rotated
    network = _network()
    # members sealed under a key this keyring lacks cannot be re-sealed: stop before any change
    network.tx(lambda tx: require_keys(tx, network.keyring), readonly=True)
    if not reencrypt_only:
        added = None
        try:
            if activate is None:
                activate = added = add_pii_key(settings)
                err.print(f"phase 1: added the personal-data key {activate}, not active yet; waiting "
                          f"{settle_seconds:g} s for every process to read it", highlight=False, markup=False)
            else:  # resuming: the key must be in the file, and every process must have read it (wait again)
                keyring_with_active_key(_key_file_json(settings), activate)
                err.print(f"phase 1: the personal-data key {activate} is in the key file; waiting "
                          f"{settle_seconds:g} s for every process to have read it", highlight=False, markup=False)
            time.sleep(settle_seconds)
            activate_pii_key(settings, activate)
        except (ValueError, OSError) as exc:
            resume = (f"; the key {added} was added, not active: resume with `pointsnet keys rotate --activate "
                      f"{added}`") if added else ""
            fail(_key_file_error(exc) + resume, _key_file_status(exc))
        err.print(f"phase 2: {activate} is the active personal-data key; waiting {settle_seconds:g} s for every "
                  f"process to read it", highlight=False, markup=False)
        time.sleep(settle_seconds)
    keyring = network.keyring
    resealed = network.rotate_personal_data(batch_size)
    left = network.tx(lambda tx: stale_count(tx, keyring.active.id), readonly=True)
    print(json.dumps({"active_key": keyring.active.id, "resealed": resealed, "left": left,
                      "old_keys": sorted(k for k in keyring.keys if k != keyring.active.id)}))
    if left:  # enrolled under an older key meanwhile: the rotation ran, and is not done
        fail(f"{left} members are still sealed under an older key; run `pointsnet keys rotate --reencrypt-only`",
             TROUBLE)


def _key_file_json(settings) -> dict:
    from shared.keys import pii_key_file

    return json.loads(pii_key_file(settings).read_text())


def _key_file_error(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"cannot change the personal-data key file: {exc.strerror or exc}"
    return str(exc)


def _key_file_status(exc: Exception) -> int:
    """A key file the system cannot change is TROUBLE; a key id the keyring refuses (unknown, already
    active) is the operator's MISTAKE."""
    return TROUBLE if isinstance(exc, OSError) else MISTAKE


def _stage_next_keyring(settings, activate: str | None) -> None:
    """Keys from POINTSNET_PII_KEYS, which no command can change: write the next phase's keyring to
    an owner-only file beside the data and tell the operator how to deploy it."""
    from shared.keys import keyring_with_active_key, keyring_with_new_key, write_keyring

    current = json.loads(settings.pii_keys)
    staged = settings.data_dir / "keys" / "pii-keys.next.json"
    def stage(data: dict) -> None:
        try:
            write_keyring(staged, data)
        except OSError as exc:
            fail(f"cannot write {staged}: {exc.strerror or exc}", TROUBLE)

    if activate is None:
        data, key_id = keyring_with_new_key(current)
        stage(data)
        print(json.dumps({"added_key": key_id, "active_key": data["active"], "resealed": 0,
                          "next_keyring_file": str(staged)}))
        err.print(f"personal-data keys come from POINTSNET_PII_KEYS, which this command cannot change. Phase 1: "
                  f"a keyring with the new key {key_id} NOT active yet (and every current key, "
                  f"{data['active']} still active) is in {staged} (owner-only). 1) Put its content in "
                  f"POINTSNET_PII_KEYS of every process and restart them all; 2) once every process runs with "
                  f"it, run `pointsnet keys rotate --activate {key_id}` with it in POINTSNET_PII_KEYS.",
                  highlight=False, markup=False)
        return
    try:
        data = keyring_with_active_key(current, activate)
    except ValueError as exc:
        fail(f"POINTSNET_PII_KEYS: {exc}")
    stage(data)
    print(json.dumps({"activated_key": activate, "active_key": activate, "resealed": 0,
                      "next_keyring_file": str(staged)}))
    err.print(f"Phase 2: a keyring with {activate} active (and every current key) is in {staged} (owner-only). "
              f"1) Put its content in POINTSNET_PII_KEYS of every process and restart them all; 2) then run "
              f"`pointsnet keys rotate --reencrypt-only` with it in POINTSNET_PII_KEYS; 3) delete {staged}.",
              highlight=False, markup=False)


@network_keys_app.command("retire")
def keys_retire(key_id: str) -> None:
    """Remove an old personal-data key from the key file, once nothing is sealed under it any more: no
    member, and no Idempotency-Key record within its retention (an API enrolment kept hashed under it, a
    link token kept sealed under it, for a retry), so one retention (7 days) after the rotation."""
    from datetime import timedelta

    from shared.config import get_settings as settings_now
    from shared.keys import retire_pii_key
    from shared.members.enrolment import kept_under_key
    from shared.members.rotation import stale_count

    network = _network()
    keyring = network.keyring
    active = keyring.active.id
    left = network.tx(lambda tx: stale_count(tx, active), readonly=True)
    if left:
        fail(f"{left} members are still sealed under an older key; run `pointsnet keys rotate --reencrypt-only`")
    if key_id != active and key_id in keyring.keys:
        kept, newest = network.tx(lambda tx: kept_under_key(tx, key_id), readonly=True)
        if kept:
            after = newest + timedelta(days=network.settings.idempotency_retention_days)
            fail(f"{kept} Idempotency-Key records within their retention still need {key_id} (API enrolments "
                 f"kept hashed under it, link tokens kept sealed under it, for a retry); retire it after "
                 f"{after.isoformat(timespec='seconds')}")
    try:
        retire_pii_key(settings_now(), key_id)
    except (ValueError, OSError) as exc:
        fail(_key_file_error(exc), _key_file_status(exc))
    print(json.dumps({"retired": key_id, "active_key": active}))
