"""Whether the keys a host was given are the network's own, checked when a writer starts.

A host given keys that exist but are not its network's (``pointsnet keys init`` run on a new host, a data
directory of another network, an old backup) would not stop on a missing key (shared/keys.py): with a
keyring that holds none of the keys members are sealed under it enrols a phone already enrolled as a new
member (its blind index finds no one), and with another signing key it signs checkpoints and answers that
nobody recorded. Both are read from one member and the newest checkpoint, so the check costs the same on
any network; it is a check that the keys belong here, not an audit (``pointsnet verify`` is that).
"""

from __future__ import annotations

from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import or_, select

from shared.db.database import Tx
from shared.members.privacy import Keyring
from shared.members.rotation import CIPHERTEXTS, SEALED, ciphertext_key_id, key_ids, members_t
from shared.models.transparency import Checkpoint
from shared.signing import RETIRED_KEY_ROLLOUT
from shared.signing_keys import known_keys, public_key_id
from shared.transparency.note import open_note

def keyring_mismatch(tx: Tx, keyring: Keyring) -> str | None:
    """Why ``keyring`` is not the one this network's members are sealed under, or None: a sealed member's
    key ids must be in it, and its key must open that member's ciphertext (the same id with other key
    material is another keyring too)."""
    row = tx.session.execute(select(members_t.c.id, *SEALED)
                             .where(or_(*(column.is_not(None) for column in SEALED))).limit(1)).first()
    if row is None:
        return None
    values = row._mapping
    missing = sorted(key_ids(values) - set(keyring.keys))
    if missing:
        return (f"members are sealed under the personal-data key{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}, which this host's keyring does not hold")
    for field in CIPHERTEXTS:
        token = values[f"{field}_ct"]
        if token:
            try:
                keyring.decrypt(field, row.id, token)
            except (InvalidTag, ValueError):
                return (f"this host's personal-data key {ciphertext_key_id(token)} does not open members "
                        "sealed under that id: it is another keyring's key of the same name")
            break
    return None


def signing_key_mismatch(tx: Tx, key: Ed25519PublicKey, now: datetime) -> str | None:
    """Why ``key`` is not a key this network signs with, or None. After a rotation the network's record of
    its keys says (a key retired more than RETIRED_KEY_ROLLOUT ago signs what partners' SDKs reject); before
    any rotation, the newest signed checkpoint must verify under it."""
    key_id = public_key_id(key)
    recorded = known_keys(tx)
    if recorded:
        mine = next((known for known in recorded if known.key_id == key_id), None)
        current = ", ".join(known.key_id for known in recorded if known.retired_at is None)
        if mine is None:
            return f"this host's signing key {key_id} is not one this network recorded (its current key: {current})"
        if mine.retired_at is not None and now > mine.retired_at + RETIRED_KEY_ROLLOUT:
            return (f"this host's signing key {key_id} was retired at {mine.retired_at.isoformat(timespec='seconds')}, "
                    f"more than {RETIRED_KEY_ROLLOUT} ago: partners' SDKs reject what it signs (the network's "
                    f"current key: {current})")
        return None
    note = tx.session.scalar(select(Checkpoint.note).order_by(Checkpoint.id.desc()).limit(1))
    if note is None:
        return None
    try:
        open_note(note, note.split("\n", 1)[0], key)
    except ValueError:
        return f"this network's newest checkpoint is not signed by this host's signing key {key_id}"
    return None
