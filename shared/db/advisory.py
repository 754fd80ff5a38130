"""PostgreSQL advisory locks named by text: one signed 64-bit key from the parts' SHA-256, so
locks of different purposes (an Idempotency-Key, a sign-in address) never share a key."""

from __future__ import annotations

import hashlib

from sqlalchemy import bindparam, func, select

_UNTIL_COMMIT = select(func.pg_advisory_xact_lock(bindparam("k")))
_UNTIL_COMMIT_SHARED = select(func.pg_advisory_xact_lock_shared(bindparam("k")))


def advisory_key(*parts: str) -> int:
    """The key for ``pg_advisory*_lock(:k)`` of a name such as ("idem", partner, key)."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_until_commit(session, *parts: str, shared: bool = False) -> None:
    """PostgreSQL: wait for the advisory lock named ``parts`` and hold it until the transaction ends
    (``shared``: beside other shared holders, never beside an exclusive one). The lock manager's
    queue is fair: a request waits behind earlier waiters it conflicts with."""
    session.execute(_UNTIL_COMMIT_SHARED if shared else _UNTIL_COMMIT, {"k": advisory_key(*parts)})
