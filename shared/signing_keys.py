"""The network's signing keys over time: which public keys it signs and signed with.

A host signs with the key in its key file (shared/keys.py). ``pointsnet keys rotate-signing`` records here,
in the database every host shares, the public key it retires and the one it makes, so that every API host
serves them all (``GET /v1/network/keys``) and checkpoints and settlement manifests signed before a
rotation still verify. Only public keys are recorded; a network that never rotated has no row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, text

from shared.db.advisory import advisory_key
from shared.db.database import Tx
from shared.keys import SigningKeyNotCurrent, SigningKeyRetired
from shared.models import NetworkSigningKey
from shared.signing import RETIRED_KEY_ROLLOUT, b64url, key_fingerprint, public_key_from_jwk, raw_public


def public_key_id(key: Ed25519PublicKey) -> str:
    """The key id a public key is served and signs under (``network_key_id`` of its private key)."""
    return f"network-{key_fingerprint(key)}"


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")

ROLLOUT = RETIRED_KEY_ROLLOUT  # how long a retired key still signs (shared/signing.py)


@dataclass(frozen=True)
class KnownKey:
    key_id: str
    key: Ed25519PublicKey
    current_from: datetime | None
    retired_at: datetime | None


def known_keys(tx: Tx) -> list[KnownKey]:
    """Every key a rotation recorded, the current ones first, then the retired ones, newest first."""
    rows = tx.session.execute(select(NetworkSigningKey)).scalars().all()
    rows = sorted(rows, key=lambda r: (r.retired_at is not None, -(r.retired_at or r.current_from or _EPOCH)
                                       .timestamp(), r.key_id))
    return [KnownKey(r.key_id, public_key_from_jwk({"x": r.public_key}), r.current_from, r.retired_at)
            for r in rows]


def current_key_ids(tx: Tx) -> set[str]:
    """The key ids a rotation recorded as the network's current signing key (none before any rotation)."""
    return {known.key_id for known in known_keys(tx) if known.retired_at is None}


def public_keys(tx: Tx, current: Ed25519PublicKey | None) -> dict[str, Ed25519PublicKey]:
    """Key id -> public key of every network key, current or retired: ``current`` (the key this host signs
    with) and every key a rotation recorded. What a settlement manifest's signature is checked against."""
    keys = {known.key_id: known.key for known in known_keys(tx)}
    if current is not None:
        keys[public_key_id(current)] = current
    return keys


def retired(tx: Tx, key: Ed25519PublicKey) -> datetime | None:
    """When a rotation retired ``key``, or None (current, or never recorded)."""
    return tx.session.execute(select(NetworkSigningKey.retired_at)
                              .where(NetworkSigningKey.key_id == public_key_id(key))).scalar_one_or_none()


ROTATION_LOCK = advisory_key("network_signing_keys", "rotate")


def record_rotation(tx: Tx, old: Ed25519PublicKey, new: Ed25519PublicKey) -> None:
    """``old`` retired now, ``new`` current from now, once ``old`` is found, under the database's lock, to be
    the network's current key: recorded as current, or never recorded while no key is (a network's first
    rotation). Another host may have rotated the same key since this one checked it (the key file's lock is
    each host's own): then SigningKeyRetired (SigningKeyNotCurrent for a key never recorded while another
    is current), and nothing is recorded. Rotations are one at a time: an
    advisory lock on PostgreSQL, the unit's write lock on SQLite (taken as it begins)."""
    if tx.is_postgres:
        tx.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ROTATION_LOCK})
    old_id, new_id = public_key_id(old), public_key_id(new)
    row = tx.session.get(NetworkSigningKey, old_id, populate_existing=True)
    if row is not None and row.retired_at is not None:
        raise SigningKeyRetired(f"this host's signing key {old_id} was retired at "
                                f"{row.retired_at.isoformat(timespec='seconds')} by another rotation: give this "
                                "host the network's current signing key instead of rotating again")
    current = tx.session.execute(select(NetworkSigningKey.key_id).where(NetworkSigningKey.retired_at.is_(None),
                                                                        NetworkSigningKey.key_id != old_id)
                                 .order_by(NetworkSigningKey.key_id)).scalars().all()
    if current:
        raise SigningKeyNotCurrent(f"this host's signing key {old_id} is not the network's: {', '.join(current)} "
                                   "is (recorded by a rotation): give this host the network's current signing "
                                   "key instead of rotating")
    if row is None:
        tx.session.add(NetworkSigningKey(key_id=old_id, public_key=b64url(raw_public(old)), current_from=None,
                                         retired_at=tx.now))
    else:
        row.retired_at = tx.now
    tx.session.add(NetworkSigningKey(key_id=new_id, public_key=b64url(raw_public(new)), current_from=tx.now,
                                     retired_at=None))
