"""Checkpoint notes in the C2SP formats (tlog-checkpoint, signed-note), with no database in sight.

A checkpoint note is::

    <origin>
    <tree size>
    <base64 root hash>
    timestamp <RFC 3339 UTC time>       (an extension line: when it was signed)

    — <key name> <base64(4-byte key hash || Ed25519 signature)>

The signature covers the text up to and including the newline before the blank
line; the key hash is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key).
The partner SDK uses this module to check what the network serves.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.signing import raw_public

EM_DASH = "\u2014"
ED25519 = b"\x01"


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
