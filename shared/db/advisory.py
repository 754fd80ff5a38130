"""PostgreSQL advisory locks named by text: one signed 64-bit key from the parts' SHA-256, so
locks of different purposes (an Idempotency-Key, a sign-in address) never share a key."""

from __future__ import annotations

import hashlib


def advisory_key(*parts: str) -> int:
    """The key for ``pg_advisory*_lock(:k)`` of a name such as ("idem", partner, key)."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
