"""Partners' signing keys: registration, rotation with overlap (two active at most), revocation.

A key's material (its 32 raw public bytes) is registered once in the network's life: a key already
registered, to this partner or another, is refused (``key_already_registered``), and so is one that
was revoked (``key_previously_revoked``), whatever partner offers it again — a revoked key is
typically one that leaked, and a new keyid must not make its private key sign again. (Not the API's
``key_revoked``, a 401 for a request signed with a revoked keyid: one code, one status.)"""

from __future__ import annotations

from dataclasses import dataclass

from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.db.advisory import lock_until_commit
from shared.db.database import Tx
from shared.db.lists import per_dialect
from shared.db.types import new_id
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import Partner, PartnerKey, RequestNonce
from shared.partners.contracts import lock_partner, require_partner
from shared.signing import FRESHNESS_S, b64url, load_public_key, raw_public

MAX_ACTIVE_KEYS = 2
keys_t = PartnerKey.__table__
nonces_t = RequestNonce.__table__
partners_t = Partner.__table__
# Built once: every signed request runs these.
_RESOLVE = (select(keys_t.c.key_id, keys_t.c.partner_id, keys_t.c.public_key, keys_t.c.status, partners_t.c.status)
            .join(partners_t, partners_t.c.id == keys_t.c.partner_id).where(keys_t.c.key_id == bindparam("key_id")))


@per_dialect
def _remember(dialect: str):
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    return (insert_(nonces_t).values(key_id=bindparam("key_id"), nonce=bindparam("nonce"), seen_at=bindparam("seen_at"))
            .on_conflict_do_nothing().returning(nonces_t.c.nonce))


class TooManyKeys(Conflict):
    code, title = "too_many_keys", "A partner has at most two active keys"


class RevokedKeyRefused(Conflict):
    code, title = "key_previously_revoked", "This key was revoked; it is never accepted again"


class KeyAlreadyRegistered(Conflict):
    code, title = "key_already_registered", "This key is already registered"


class UnknownKey(NotFound):
    code, title = "unknown_key", "Unknown key"


@dataclass(frozen=True)
class ResolvedKey:
    key_id: str
    partner_id: str
    public_key: str
    status: str
    partner_status: str


def add_key(tx: Tx, partner_id: str, public_key_text: str) -> dict:
    require_partner(tx, partner_id)
    try:
        key = load_public_key(public_key_text)
    except ValueError as exc:
        raise ValidationFailed(f"public key: {exc}") from exc
    public = b64url(raw_public(key))  # one spelling of the key, whatever its encoding here
    lock_partner(tx, partner_id)  # two keys added at once must not both count one active key
    if tx.is_postgres:  # the same key added to two partners at once: the second sees the first
        lock_until_commit(tx.session, "partner-key", public)
    _require_new(tx, public)
    active = tx.session.execute(select(func.count()).select_from(keys_t).where(
        keys_t.c.partner_id == partner_id, keys_t.c.status == "active")).scalar_one()
    if active >= MAX_ACTIVE_KEYS:
        raise TooManyKeys("revoke one of the two active keys before adding another")
    key_id = new_id("key")
    tx.session.execute(insert(keys_t).values(key_id=key_id, partner_id=partner_id,
                                             public_key=public, status="active", created_at=tx.now))
    return {"partner_id": partner_id, "key_id": key_id}


def _require_new(tx: Tx, public: str) -> None:
    """Refuse key material registered before, to any partner: revoked (``key_previously_revoked``), or not."""
    rows = tx.session.execute(select(keys_t.c.key_id, keys_t.c.partner_id, keys_t.c.status, keys_t.c.revoked_at)
                              .where(keys_t.c.public_key == public).order_by(keys_t.c.created_at)).all()
    revoked = [row for row in rows if row.status == "revoked"]
    if revoked:
        row = revoked[0]
        when = f" at {row.revoked_at.isoformat()}" if row.revoked_at else ""
        raise RevokedKeyRefused(f"this public key was registered as {row.key_id} (partner {row.partner_id}) and "
                                f"revoked{when}; a revoked key is never accepted again: make a new key pair",
                                key_id=row.key_id)
    if rows:
        row = rows[0]
        raise KeyAlreadyRegistered(f"this public key is already registered as {row.key_id} (partner "
                                   f"{row.partner_id}); a key is registered once: make a new key pair",
                                   key_id=row.key_id)


def revoke_key(tx: Tx, key_id: str) -> dict:
    done = tx.session.execute(update(keys_t).where(keys_t.c.key_id == key_id, keys_t.c.status == "active")
                              .values(status="revoked", revoked_at=tx.now))
    if done.rowcount != 1:
        raise UnknownKey(f"no active key {key_id}")
    return {"key_id": key_id, "status": "revoked"}


def resolve_key(tx: Tx, key_id: str) -> ResolvedKey | None:
    row = tx.session.execute(_RESOLVE, {"key_id": key_id}).first()
    return ResolvedKey(*row) if row else None


def list_keys(tx: Tx, partner_id: str) -> list[dict]:
    rows = tx.session.execute(select(keys_t).where(keys_t.c.partner_id == partner_id)
                              .order_by(keys_t.c.created_at)).all()
    return [{"key_id": r.key_id, "status": r.status, "created_at": r.created_at.isoformat(),
             "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None} for r in rows]


def remember_nonce(tx: Tx, key_id: str, nonce: str, now: datetime) -> bool:
    """Record a nonce; False if it was already seen for this key."""
    if not 0 < len(nonce) <= 128:
        raise ValidationFailed("nonce must be 1 to 128 characters")
    inserted = tx.session.execute(_remember(tx.dialect), {"key_id": key_id, "nonce": nonce, "seen_at": now}).first()
    return inserted is not None


# How far apart the clocks of the network's hosts may be (docs/operations.md: keep them on NTP).
CLOCK_SKEW_S = 300
# How long a nonce is kept after it was seen. A request is accepted while |now - created| <= FRESHNESS_S
# by the clock of the API host that answers it, so one seen at T (that host's clock) can be replayed
# until created + FRESHNESS_S <= T + 2 x FRESHNESS_S; seen_at is the API host's clock and the pruning
# job reads the worker's, so the allowed skew between them is kept on top.
NONCE_KEPT_S = 2 * FRESHNESS_S + CLOCK_SKEW_S


def prune_nonces(tx: Tx, now: datetime) -> int:
    """Forget the nonces no request they guard can still be accepted with: seen more than
    ``NONCE_KEPT_S`` before ``now`` (the pruning host's clock)."""
    cutoff = now - timedelta(seconds=NONCE_KEPT_S)
    return tx.session.execute(delete(nonces_t).where(nonces_t.c.seen_at < cutoff)).rowcount
