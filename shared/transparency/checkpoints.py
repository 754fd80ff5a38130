"""Signed checkpoints of the tree: made by a job every minute, stored, served, and put in manifests.

The note format is in shared/transparency/note.py.
"""

from __future__ import annotations

import base64
import logging
from datetime import timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, insert, select

from shared.config import Settings
from shared.db.database import Tx
from shared.errors import Conflict, NotFound, PointsnetError, ValidationFailed
from shared.members.consent import linked_members
from shared.models import Checkpoint, Entry, LedgerLeaf, Lot, NetworkOrigin, Transfer
from shared.transparency.encoding import encode_entries
from shared.transparency.note import ParsedCheckpoint, note_body, sign_note
from shared.transparency.store import StoredTree, seal_all, tree_size, unsealed_through

logger = logging.getLogger("pointsnet.transparency")


class NoCheckpoint(NotFound):
    code, title = "checkpoint_not_found", "No such checkpoint"


class UnknownTransaction(NotFound):
    code, title = "transaction_not_found", "No such transaction"


def origin(settings: Settings) -> str:
    return f"{settings.public_authority or 'pointsnet.local'}/ledger"


def record_origin(tx: Tx, name: str) -> None:
    """Note ``name`` among the origins the network signs under (once; two signers at once make one row):
    ``pointsnet verify`` refuses a checkpoint under any other."""
    if tx.is_postgres:
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    tx.session.execute(upsert(NetworkOrigin).values(origin=name, first_used_at=tx.now)
                       .on_conflict_do_nothing(index_elements=["origin"]))


def make_checkpoint(tx: Tx, key: Ed25519PrivateKey, *, seal: bool = True) -> Checkpoint:
    """Sign the tree as it stands (after sealing what is committed, unless told not to) and store it."""
    if seal:
        seal_all(tx)
    size = tree_size(tx)
    root = StoredTree(tx).root(size)
    name = origin(tx.settings)
    record_origin(tx, name)
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
            "created_at": _served_time(row), "note": row.note}


def _served_time(row: Checkpoint) -> str:
    """The row's time as served and as its note's timestamp line writes it (``note_body``): to the second."""
    return row.created_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def signed_as_stored(parsed: ParsedCheckpoint, row: Checkpoint) -> bool:
    """``pointsnet verify``: the row's note, verified and parsed, signs what the row holds and the API serves
    beside it — its size, its root and its time. ``make_checkpoint`` writes one instant (``tx.now``) to
    both, the row to the microsecond and the note truncated to the second, so they agree to the second
    on every checkpoint the network signed; a row whose time was moved does not."""
    stamps = [line for line in parsed.extensions if line.startswith("timestamp ")]
    return parsed.tree_size == row.tree_size and parsed.root_hash == bytes(row.root_hash) \
        and stamps == [f"timestamp {_served_time(row)}"]


class TransactionNotSealed(Conflict):
    code, title = "transaction_not_sealed", "The transaction is not in a signed checkpoint yet"


class InvalidTreeSizes(ValidationFailed):
    code, title = "invalid_tree_sizes", "No consistency proof between these tree sizes"


class ProofUnavailable(PointsnetError):
    """The tree store lacks a subtree the proof needs: damage for the operators (``pointsnet verify``
    names it as ``stored_tree_mismatch``), not something a retry mends. Proofs and checkpoints already
    given out stay valid: they are checked against signed roots, not against the store."""
    status, code, title = 503, "proof_unavailable", "The network cannot build this proof now"


def _stored_path(build) -> list:
    try:
        return build()
    except LookupError as missing:
        logger.error("proof_unavailable", extra={"reason": str(missing)})
        raise ProofUnavailable("the network's tree store cannot build this proof (its operators are told by "
                               "`pointsnet verify`); proofs and checkpoints you already hold stay valid") from None


MAX_TREE_SIZE = 2**63 - 1  # the largest size a 64-bit column holds


def named_members(tx: Tx, entry_id: str) -> set[str]:
    """The members an entry's leaf names: the entry's member, the members of its postings' accounts
    (``member:<id>`` and ``member:<id>:held``) and of the lots it created (the member issued to)."""
    named = set(tx.session.execute(select(Entry.member_id).where(Entry.id == entry_id,
                                                                 Entry.member_id.is_not(None))).scalars())
    for debit, credit in tx.session.execute(select(Transfer.debit_account, Transfer.credit_account)
                                            .where(Transfer.entry_id == entry_id)):
        named.update(account.split(":")[1] for account in (debit, credit) if account.startswith("member:"))
    named.update(tx.session.execute(select(func.coalesce(Lot.merged_from, Lot.member_id))
                                    .where(Lot.entry_id == entry_id)).scalars())
    return named


def inclusion_proof(tx: Tx, partner_id: str, entry_id: str) -> dict:
    """The partner's own transaction, its leaf and the path to the latest checkpoint's root.

    Another partner's transaction, or none, is 404 alike: a partner sees only its own. A leaf naming a
    member the partner is not linked to now (its customer that withdrew its consent, the survivor of a
    merge that is another partner's member, a referrer linked elsewhere) is not given: ``leaf_data`` null,
    as its transaction list shows such an entry's ``member_id``; ``leaf_hash`` and the path still prove
    the leaf is in the signed tree."""
    found = tx.session.execute(select(LedgerLeaf.leaf_index, LedgerLeaf.leaf_hash).join(
        Entry, Entry.id == LedgerLeaf.entry_id).where(Entry.id == entry_id, Entry.partner_id == partner_id)).first()
    if found is None:
        owned = tx.session.execute(select(Entry.id).where(Entry.id == entry_id, Entry.partner_id == partner_id)
                                   ).first()
        if owned is None:
            raise UnknownTransaction(f"you have no transaction {entry_id}")
        raise TransactionNotSealed("sealed within a minute; ask again after the next checkpoint")
    checkpoint = latest(tx)
    index = int(found.leaf_index)
    if index >= checkpoint.tree_size:
        raise TransactionNotSealed("sealed, but not yet in a signed checkpoint; ask again within a minute")
    named = named_members(tx, entry_id)
    withheld = bool(named - linked_members(tx, partner_id, named))
    data = None if withheld else _b64(encode_entries(tx, [entry_id])[entry_id])
    path = _stored_path(lambda: StoredTree(tx).inclusion(index, checkpoint.tree_size))
    return {"transaction_id": entry_id, "leaf_index": index, "tree_size": checkpoint.tree_size,
            "leaf_hash": _b64(found.leaf_hash), "leaf_data": data,
            "inclusion_path": [_b64(h) for h in path], "checkpoint": checkpoint_json(checkpoint)}


def consistency_proof(tx: Tx, old_size: int, new_size: int) -> dict:
    """RFC 9162 consistency proof between two tree sizes the network has signed checkpoints for."""
    refusal = InvalidTreeSizes(f"from={old_size} and to={new_size} must be sizes of signed checkpoints, "
                               "0 < from <= to")
    if not 0 < old_size <= new_size <= MAX_TREE_SIZE:  # before the query: a size beyond 64 bits fails in it
        raise refusal
    signed = set(tx.session.execute(select(Checkpoint.tree_size).where(
        Checkpoint.tree_size.in_([old_size, new_size]))).scalars())
    if {old_size, new_size} - signed:
        raise refusal
    path = _stored_path(lambda: StoredTree(tx).consistency(old_size, new_size))
    return {"from": old_size, "to": new_size, "consistency_path": [_b64(h) for h in path]}


def _b64(data) -> str:
    return base64.b64encode(bytes(data)).decode()
