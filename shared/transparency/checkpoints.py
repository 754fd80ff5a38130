"""Signed checkpoints of the tree in the C2SP formats (tlog-checkpoint, signed-note).

A checkpoint note is::

    <origin>
    <tree size>
    <base64 root hash>
    timestamp <RFC 3339 UTC time>       (an extension line: when it was signed)

    — <key name> <base64(4-byte key hash || Ed25519 signature)>

The signature covers the text up to and including the newline before the blank
line; the key hash is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, insert, select

from shared.config import Settings
from shared.db.database import Tx
from shared.errors import NotFound
from shared.models import Checkpoint, Entry, LedgerLeaf
from shared.signing import raw_public
from shared.transparency.store import StoredTree, seal_all, tree_size, unsealed_through

EM_DASH = "\u2014"
ED25519 = b"\x01"


class NoCheckpoint(NotFound):
    code, title = "checkpoint_not_found", "No such checkpoint"


def origin(settings: Settings) -> str:
    return f"{settings.public_authority or 'pointsnet.local'}/ledger"


def key_hash(name: str, public_key: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + raw_public(public_key)).digest()[:4]


def vkey(name: str, public_key: Ed25519PublicKey) -> str:
    """The verifier key string of signed-note: <name>+<hex key hash>+<base64(0x01 || public key)>."""
    return f"{name}+{key_hash(name, public_key).hex()}+{base64.b64encode(ED25519 + raw_public(public_key)).decode()}"


def note_body(origin_line: str, size: int, root: bytes, signed_at: datetime) -> str:
    stamp = signed_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{origin_line}\n{size}\n{base64.b64encode(root).decode()}\ntimestamp {stamp}\n"


def sign_note(body: str, name: str, key: Ed25519PrivateKey) -> str:
    signature = key_hash(name, key.public_key()) + key.sign(body.encode())
    return f"{body}\n{EM_DASH} {name} {base64.b64encode(signature).decode()}\n"


@dataclass(frozen=True)
class ParsedCheckpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...]


def open_note(note: str, name: str, public_key: Ed25519PublicKey) -> ParsedCheckpoint:
    """Verify the note's signature by ``name``'s key and parse the checkpoint; raises ValueError."""
    body, sep, signatures = note.partition("\n\n")
    if not sep or not body:
        raise ValueError("a signed note has a text, a blank line and signature lines")
    body += "\n"
    wanted = key_hash(name, public_key)
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH or parts[1] != name:
            continue
        raw = base64.b64decode(parts[2])
        if raw[:4] != wanted:
            continue
        try:
            public_key.verify(raw[4:], body.encode())
        except InvalidSignature:
            raise ValueError(f"the signature by {name} does not verify") from None
        lines = body.splitlines()
        if len(lines) < 3:
            raise ValueError("a checkpoint has an origin, a size and a root hash")
        root = base64.b64decode(lines[2], validate=True)
        if len(root) != 32 or not lines[1].isdigit():
            raise ValueError("malformed tree size or root hash")
        return ParsedCheckpoint(lines[0], int(lines[1]), root, tuple(lines[3:]))
    raise ValueError(f"no signature by {name} on the note")


def make_checkpoint(tx: Tx, key: Ed25519PrivateKey) -> Checkpoint:
    """Sign the tree as it stands (after sealing what is committed) and store the checkpoint."""
    seal_all(tx)
    size = tree_size(tx)
    root = StoredTree(tx).root(size)
    name = origin(tx.settings)
    note = sign_note(note_body(name, size, root, tx.now), name, key)
    new_id = tx.session.execute(insert(Checkpoint.__table__).values(
        tree_size=size, root_hash=root, created_at=tx.now, note=note).returning(Checkpoint.id)).scalar_one()
    return tx.session.get(Checkpoint, new_id)


def latest(tx: Tx) -> Checkpoint:
    found = tx.session.execute(select(Checkpoint).order_by(Checkpoint.tree_size.desc(), Checkpoint.id.desc())
                               .limit(1)).scalar_one_or_none()
    if found is None:
        raise NoCheckpoint("no checkpoint has been signed yet")
    return found


def covering(tx: Tx, cycle) -> Checkpoint | None:
    """The first checkpoint whose tree holds every entry of every cycle up to ``cycle``: the checkpoint
    at cut-off that the cycle's settlement manifest carries. None while some of them are unsealed."""
    if unsealed_through(tx, cycle):
        return None
    needed = tx.session.execute(select(func.max(LedgerLeaf.leaf_index)).join(
        Entry, Entry.id == LedgerLeaf.entry_id).where(Entry.cycle_date <= cycle)).scalar_one()
    needed = 0 if needed is None else int(needed) + 1
    return tx.session.execute(select(Checkpoint).where(Checkpoint.tree_size >= needed)
                              .order_by(Checkpoint.tree_size, Checkpoint.id).limit(1)).scalar_one_or_none()


def checkpoint_at_cutoff(tx: Tx, cycle, key: Ed25519PrivateKey) -> Checkpoint:
    """For settlement (the cycle is closed): the covering checkpoint, signing one if there is none yet."""
    return covering(tx, cycle) or make_checkpoint(tx, key)


def checkpoint_json(row: Checkpoint) -> dict:
    return {"tree_size": row.tree_size, "root_hash": base64.b64encode(row.root_hash).decode(),
            "created_at": row.created_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "note": row.note}
