"""Where one entry stands in the sealed tree: not sealed yet, sealed but not yet in a signed
checkpoint, or in the latest checkpoint with an inclusion proof that was checked here.

The check recomputes the entry's leaf from what the ledger holds now (so a changed entry shows
as a mismatch), builds the RFC 9162 inclusion path from the stored subtrees, and verifies that it
leads to the latest checkpoint's root. The checkpoint's signature is `pointsnet verify`'s job.
"""

from __future__ import annotations

import base64
from datetime import timezone

from sqlalchemy import select

from shared.db.database import Tx
from shared.models import Checkpoint, LedgerLeaf
from shared.transparency import merkle
from shared.transparency.encoding import encode_entries
from shared.transparency.store import StoredTree


def inclusion_status(tx: Tx, entry_id: str) -> dict:
    """``state`` is one of unsealed, awaiting_checkpoint, verified, mismatch (with the figures shown)."""
    leaf = tx.session.execute(select(LedgerLeaf.leaf_index, LedgerLeaf.leaf_hash, LedgerLeaf.sealed_at)
                              .where(LedgerLeaf.entry_id == entry_id)).first()
    if leaf is None:
        return {"state": "unsealed"}
    index = int(leaf.leaf_index)
    found = {"leaf_index": index, "sealed_at": leaf.sealed_at,
             "leaf_hash": base64.b64encode(bytes(leaf.leaf_hash)).decode()}
    checkpoint = tx.session.execute(select(Checkpoint).order_by(Checkpoint.tree_size.desc(), Checkpoint.id.desc())
                                    .limit(1)).scalar_one_or_none()
    if checkpoint is None or index >= checkpoint.tree_size:
        return found | {"state": "awaiting_checkpoint"}
    data = encode_entries(tx, [entry_id]).get(entry_id)
    recomputed = merkle.leaf_hash(data) if data is not None else b""
    try:
        path, built = StoredTree(tx).inclusion(index, checkpoint.tree_size), True
    except LookupError:  # a subtree missing from the store: no proof can be built (verify names it)
        path, built = [], False
    proved = built and recomputed == bytes(leaf.leaf_hash) and merkle.verify_inclusion(
        index, checkpoint.tree_size, recomputed, path, bytes(checkpoint.root_hash))
    return found | {"state": "verified" if proved else "mismatch", "tree_size": checkpoint.tree_size,
                    "root_hash": base64.b64encode(bytes(checkpoint.root_hash)).decode(),
                    "checkpoint_at": checkpoint.created_at.astimezone(timezone.utc), "path_length": len(path)}
