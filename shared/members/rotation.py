"""Key rotation: re-encrypt every ciphertext and re-compute every blind-index value under the active key.

Runs in bounded batches, one short transaction each, members locked in id order like
every other writer, so the network keeps running: lookups try every key in the keyring
(``Keyring.lookup_indexes``), so a member is found whether its row was re-indexed yet or not.
A batch only touches rows that still carry another key id, so the job can stop and resume. Members sealed
under a key the keyring no longer holds stop it before anything is re-sealed (``require_keys``).
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import and_, bindparam, func, or_, select, update

from shared.config import ConfigurationError
from shared.db.database import Tx
from shared.members.privacy import Keyring
from shared.models import Member

members_t = Member.__table__
CIPHERTEXTS = ("phone", "email", "name")
INDEXED = ("phone", "email")


# every column a member's personal data is sealed (``v1.<key id>.…``) or indexed (``<key id>:…``) in
SEALED = [members_t.c[f"{field}_ct"] for field in CIPHERTEXTS] + [members_t.c[f"{field}_bidx"] for field in INDEXED]


def key_ids(values) -> set[str]:
    """The key ids one member's row (a mapping holding the SEALED columns) is sealed and indexed under."""
    ids = {ciphertext_key_id(values[f"{f}_ct"]) for f in CIPHERTEXTS if values[f"{f}_ct"]}
    return ids | {index_key_id(values[f"{f}_bidx"]) for f in INDEXED if values[f"{f}_bidx"]}


def ciphertext_key_id(token: str) -> str:
    return token.split(".", 2)[1]


def index_key_id(value: str) -> str:
    return value.split(":", 1)[0]


def _stale(key_id: str):
    """Rows with any ciphertext or index value under another key than ``key_id``."""
    return _under_none_of([key_id])


def _under_none_of(key_ids: list[str]):
    """Rows with any ciphertext or index value under a key none of ``key_ids`` is."""
    conditions = [and_(members_t.c[f"{field}_ct"].is_not(None),
                       *(~members_t.c[f"{field}_ct"].startswith(f"v1.{key_id}.", autoescape=True) for key_id in key_ids))
                  for field in CIPHERTEXTS]
    conditions += [and_(members_t.c[f"{field}_bidx"].is_not(None),
                        *(~members_t.c[f"{field}_bidx"].startswith(f"{key_id}:", autoescape=True) for key_id in key_ids))
                   for field in INDEXED]
    return or_(*conditions)


def missing_keys(tx: Tx, keyring: Keyring) -> dict[str, int]:
    """Key id -> how many members hold a ciphertext or index value under it, for each key id the keyring
    does not hold (none: an empty dict)."""
    held = sorted(keyring.keys)
    query = select(*SEALED).where(_under_none_of(held)).execution_options(yield_per=1000)
    counts: Counter[str] = Counter()
    for row in tx.session.execute(query):
        counts.update(key_ids(row._mapping) - set(held))
    return dict(sorted(counts.items()))


def require_keys(tx: Tx, keyring: Keyring, done: str = "nothing was re-sealed") -> None:
    """ConfigurationError, naming each missing key id and how many members it holds, if any member is
    sealed under a key the keyring does not hold: such a member cannot be re-sealed here."""
    missing = missing_keys(tx, keyring)
    if missing:
        held = ", ".join(f"{key_id} ({count} member{'s' if count != 1 else ''})" for key_id, count in missing.items())
        raise ConfigurationError(f"members are sealed under personal-data keys this host's keyring does not hold: "
                                 f"{held}; give this host the keyring that has them (POINTSNET_PII_KEYS_FILE or "
                                 f"POINTSNET_PII_KEYS), then rotate again; {done}")


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
            try:
                plain = keyring.decrypt(field, row.id, token) if token else None
            except KeyError:  # the key left the keyring since require_keys looked (the key file changed)
                require_keys(tx, keyring, "the members re-sealed before stay re-sealed")
                raise
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
