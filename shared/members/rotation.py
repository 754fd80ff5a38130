"""Key rotation: re-encrypt every ciphertext and re-compute every blind-index value under the active key.

Runs in bounded batches, one short transaction each, members locked in id order like
every other writer, so the network keeps running: lookups try every key in the keyring
(``Keyring.lookup_indexes``), so a member is found whether its row was re-indexed yet or not.
A batch only touches rows that still carry another key id, so the job can stop and resume.
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, func, or_, select, update

from shared.db.database import Tx
from shared.members.privacy import Keyring
from shared.models import Member

members_t = Member.__table__
CIPHERTEXTS = ("phone", "email", "name")
INDEXED = ("phone", "email")


def ciphertext_key_id(token: str) -> str:
    return token.split(".", 2)[1]


def index_key_id(value: str) -> str:
    return value.split(":", 1)[0]


def _stale(key_id: str):
    """Rows with any ciphertext or index value under another key than ``key_id``."""
    conditions = [and_(members_t.c[f"{field}_ct"].is_not(None),
                       ~members_t.c[f"{field}_ct"].startswith(f"v1.{key_id}.", autoescape=True))
                  for field in CIPHERTEXTS]
    conditions += [and_(members_t.c[f"{field}_bidx"].is_not(None),
                        ~members_t.c[f"{field}_bidx"].startswith(f"{key_id}:", autoescape=True))
                   for field in INDEXED]
    return or_(*conditions)


def rotate_batch(tx: Tx, keyring: Keyring, limit: int) -> int:
    """Re-seal at most ``limit`` members still under an older key; returns how many were re-sealed."""
    query = (select(members_t.c.id, *(members_t.c[f"{f}_ct"] for f in CIPHERTEXTS))
             .where(_stale(keyring.active.id)).order_by(members_t.c.id).limit(limit))
    if tx.is_postgres:
        query = query.with_for_update()
    rows = tx.session.execute(query).all()
    if not rows:
        return 0
    updates = []
    for row in rows:
        values = {"b_id": row.id}
        for field in CIPHERTEXTS:
            token = row._mapping[f"{field}_ct"]
            plain = keyring.decrypt(field, row.id, token) if token else None
            values[f"b_{field}_ct"] = keyring.encrypt(field, row.id, plain) if plain is not None else None
            if field in INDEXED:
                values[f"b_{field}_bidx"] = keyring.blind_index(field, plain) if plain is not None else None
        updates.append(values)
    tx.session.execute(
        update(members_t).where(members_t.c.id == bindparam("b_id")).values(
            **{f"{f}_ct": bindparam(f"b_{f}_ct") for f in CIPHERTEXTS},
            **{f"{f}_bidx": bindparam(f"b_{f}_bidx") for f in INDEXED},
        ).execution_options(synchronize_session=False),
        updates,
    )
    return len(rows)


def stale_count(tx: Tx, key_id: str) -> int:
    """Members with a ciphertext or index value under another key than ``key_id`` (what is left to do)."""
    return tx.session.execute(select(func.count()).select_from(members_t).where(_stale(key_id))).scalar_one()
