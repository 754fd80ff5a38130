"""Exactly-once under retries: the stored outcome of each (partner, Idempotency-Key).

The record is written in the same transaction as the postings it describes. On
PostgreSQL a non-blocking advisory lock on the key answers a concurrent twin with
``request_in_progress`` at once; on SQLite the single writer lock serialises twins,
and the second finds the first one's record.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any, Callable

from sqlalchemy import bindparam, delete, insert, select, text

from shared.db.advisory import advisory_key as lock_key
from shared.db.database import Tx
from shared.errors import IdempotencyKeyReused, RequestInProgress, ValidationFailed
from shared.ledger.journal import canonical_json, stored_json
from shared.models import IdempotencyRecord

records = IdempotencyRecord.__table__
# Built once: every POST runs them.
ADVISORY_LOCK = text("SELECT pg_try_advisory_xact_lock(:k)")
LOOKUP = select(records).where(records.c.partner_id == bindparam("partner_id"), records.c.key == bindparam("key"))
_STORE = insert(records)


def request_hash(request: dict) -> str:
    return hashlib.sha256(canonical_json(request).encode()).hexdigest()


def advisory_key(partner_id: str, key: str) -> int:
    return lock_key("idem", partner_id, key)


def claim(tx: Tx, partner_id: str, key: str) -> None:
    """On PostgreSQL, the key's advisory lock for the rest of the transaction; a twin holding it is
    answered at once. It comes before the lookup: a twin that stored its outcome has released it, and
    the lookup after it (a new snapshot in READ COMMITTED) sees that outcome."""
    if tx.is_postgres and not tx.session.execute(ADVISORY_LOCK, {"k": advisory_key(partner_id, key)}).scalar_one():
        raise RequestInProgress("a request with this Idempotency-Key is still running; retry shortly")


def replay(tx: Tx, partner_id: str, key: str, request: dict) -> tuple[int, Any, bool] | None:
    """The stored (status, body, True) of this key, or None; a different request under it is refused."""
    stored = tx.session.execute(LOOKUP, {"partner_id": partner_id, "key": key}).first()
    if stored is None:
        return None
    if stored.request_hash != request_hash(request):
        diff = what_differs(json.loads(stored.request), json.loads(canonical_json(request)))
        named = ", ".join(diff[:MAX_NAMED]) + (f" and {len(diff) - MAX_NAMED} more" if len(diff) > MAX_NAMED else "")
        raise IdempotencyKeyReused(f"Idempotency-Key {key!r} was first used for a different request "
                                   f"(differs in {named or 'content'})", differs=diff[:MAX_NAMED])
    return stored.status_code, json.loads(stored.response), True


MAX_NAMED = 20  # a reused key's refusal names at most this many differences


def what_differs(stored: Any, new: Any) -> list[str]:
    """What differs between two requests, by name: ``method`` and ``path`` of an API request, then its
    body field by field (``points``, ``items[1].amount``, ``events[3].reference``); a request without a
    body (the ledger's own) field by field too."""
    if isinstance(stored, dict) and isinstance(new, dict) and "body" in stored and "body" in new:
        outer = [part for part in sorted(set(stored) | set(new))
                 if part != "body" and stored.get(part) != new.get(part)]
        return outer + _fields(stored["body"], new["body"], "", "body")
    return _fields(stored, new, "", "content")


def _fields(stored: Any, new: Any, at: str, whole: str) -> list[str]:
    if isinstance(stored, dict) and isinstance(new, dict):
        return [name for key in sorted(set(stored) | set(new))
                for name in _fields(stored.get(key), new.get(key), f"{at}.{key}" if at else str(key), whole)]
    if isinstance(stored, list) and isinstance(new, list) and len(stored) == len(new):
        return [name for i, (a, b) in enumerate(zip(stored, new)) for name in _fields(a, b, f"{at}[{i}]", whole)]
    return [at or whole] if stored != new else []


KEY_LENGTH = 255  # an Idempotency-Key is 1 to this many characters (the partner API: visible ASCII)


def run_once(tx: Tx, partner_id: str, key: str, request: dict, operation: Callable[[], Any],
             *, status_code: int = 200) -> tuple[int, Any, bool]:
    """Run ``operation`` once per key; returns (status, body, replayed)."""
    if not key or len(key) > KEY_LENGTH:
        raise ValidationFailed(f"Idempotency-Key must be 1 to {KEY_LENGTH} characters", errors=[
            {"field": "Idempotency-Key", "message": f"must be 1 to {KEY_LENGTH} characters"}])
    claim(tx, partner_id, key)
    stored = replay(tx, partner_id, key, request)
    if stored is not None:
        return stored
    body = operation()
    store(tx, partner_id, key, request, status_code, body)
    return status_code, body, False


def store(tx: Tx, partner_id: str, key: str, request: dict, status_code: int, body: Any) -> None:
    text = canonical_json(request)  # hashed: the standard library's exact text, as every record before
    tx.session.execute(_STORE, {
        "partner_id": partner_id, "key": key, "request_hash": hashlib.sha256(text.encode()).hexdigest(),
        "request": text, "status_code": status_code, "response": stored_json(body), "created_at": tx.now})


def prune(tx: Tx) -> int:
    """Forget records older than the retention (at least 7 days)."""
    cutoff = tx.now - timedelta(days=tx.settings.idempotency_retention_days)
    return tx.session.execute(delete(records).where(records.c.created_at < cutoff)).rowcount
