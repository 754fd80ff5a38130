"""The cursors of the partner API's lists: opaque, and authenticated by the network.

A cursor is the position of the last item a page gave out (JSON), base64url, then a dot and an
HMAC-SHA256 tag (128 bits, base64url) over the list it belongs to — its name, the partner that asked,
and for a member's history the member — and the position. The HMAC key is derived (HKDF-SHA256) from
the network's Ed25519 signing key (which every API process holds), so any process verifies what another gave out
and nothing else is configured. A cursor that does not verify — made up, edited, another list's,
another partner's, or given out under a signing key since replaced — is 422 ``validation_failed``,
before the database is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.errors import ValidationFailed

KEY_LABEL = b"pointsnet-v1 list cursor key"
TAG_BYTES = 16
REFUSED = "cursor is not one this API gave out"


def cursor_key(signing_key: Ed25519PrivateKey) -> bytes:
    """The lists' HMAC key: HKDF-SHA256 of the signing key's 32-byte seed, for this one purpose."""
    seed = signing_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_LABEL).derive(seed)


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _decode(text: str) -> bytes:
    """What ``_encode`` gave, and only that (any other spelling of the same bytes is refused)."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _encode(data) != text:
        raise ValueError("not canonical base64url")
    return data


def _tag(key: bytes, listing: tuple[str, ...], payload: bytes) -> bytes:
    message = json.dumps(listing, separators=(",", ":")).encode() + b"\n" + payload
    return hmac.new(key, message, hashlib.sha256).digest()[:TAG_BYTES]


def give(key: bytes, listing: tuple[str, ...], position: Any) -> str:
    """The cursor of ``position`` (JSON-serialisable) in the list ``listing``."""
    payload = json.dumps(position, separators=(",", ":")).encode()
    return f"{_encode(payload)}.{_encode(_tag(key, listing, payload))}"


def refused() -> ValidationFailed:
    """The refusal of a cursor this API did not give out: 422 ``validation_failed``, its ``errors`` naming
    the ``cursor`` query parameter, as every ``validation_failed`` names what it refuses."""
    return ValidationFailed(REFUSED, errors=[{"field": "cursor", "message": REFUSED}])


def take(key: bytes, listing: tuple[str, ...], cursor: str) -> Any:
    """The position ``give`` put in ``cursor`` for this list; ``refused()`` for anything else."""
    try:
        payload_text, tag_text = cursor.split(".")
        payload, tag = _decode(payload_text), _decode(tag_text)
    except (ValueError, binascii.Error, UnicodeError):
        raise refused() from None
    if not hmac.compare_digest(tag, _tag(key, listing, payload)):
        raise refused()
    return json.loads(payload)
