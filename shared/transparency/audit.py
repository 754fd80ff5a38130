"""The tree half of ``pointsnet verify``: recompute every leaf and the tree, check every checkpoint.

Named findings (check, subject, detail):

* ``leaf_hash_mismatch`` — a sealed entry (or one of its postings, consumptions, lots or
  obligation lines) no longer encodes to its leaf: points, account, amount or time edited,
  a child row added or removed, or two leaves' entries swapped (both are named);
* ``sealed_entry_missing`` — a leaf's entry was deleted;
* ``leaf_missing`` — a gap in the leaf indices (a leaf row deleted);
* ``entry_not_sealed`` — an entry in a fully sealed (closed) cycle that the tree does not hold:
  inserted behind the ledger's back;
* ``checkpoint_signature`` — a stored checkpoint's note does not verify with the network key
  whose key hash its signature names (the current key, or one a rotation retired), or disagrees
  with its row, or was signed by a retired key later than its retirement and ROLLOUT (named);
* ``checkpoint_origin`` — a stored checkpoint's note verifies, but under an origin the network
  never signed under (not in ``network_origins``): the key signed it for another log;
* ``checkpoint_root_mismatch`` — the tree recomputed from the entries does not give the root a
  signed checkpoint committed to: leaves rewritten together with their stored hashes;
* ``stored_tree_mismatch`` — a stored subtree (they answer proofs) disagrees with the stored leaves
  under it, or its row is missing: each such subtree is named (``level L node I``).

Should the set-based proof (PostgreSQL) fail in a part the rebuild checks exactly — the leaf indices,
a range of stored subtrees, a checkpoint's root — and the rebuild then name nothing of that check,
the proof's failure is reported under that check rather than passed.
"""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Callable, Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, and_, exists, or_, select, text

from shared.db.database import Tx
from shared.db.snapshot import run_in_snapshot
from shared.models import Checkpoint, Entry, LedgerLeaf, LedgerNode, NetworkOrigin, SealedCycle
from shared.transparency import merkle
from shared.transparency.checkpoints import signed_as_stored
from shared.signing import raw_public
from shared.signing_keys import ROLLOUT, KnownKey, known_keys
from shared.transparency.note import EM_DASH, ParsedCheckpoint, key_hash, open_note
from shared.transparency.encoding import LEAVES_SQL, bad_leaves_sql, hash_entries
from shared.transparency.store import StoredTree

BATCH = 5000
# for the set-based checks: compiling the encoding costs more than running it; grouping wants memory;
# each query in one process (the presorted leaf check relies on it, and verify runs several side by side)
SQL_SETTINGS = ("jit = off", "work_mem = '256MB'", "max_parallel_workers_per_gather = 0")
Finding = tuple[str, str, str]


@dataclass(frozen=True)
class Verdict:
    """The set-based proof's answer: true when the tree is sound. When it is not, ``failed`` lists the
    parts that failed which the rebuild checks exactly (the leaf indices, a range of stored subtrees,
    a checkpoint's root), as findings, so that a rebuild naming nothing of their check cannot pass
    them. The leaf check's fast path is not among them: it can fail on a sound ledger (a time after
    the year 9999), and the rebuild's exact encoding decides."""
    holds: bool
    failed: tuple[Finding, ...] = ()

    def __bool__(self) -> bool:
        return self.holds


def audit(tx: Tx, public_key: Ed25519PublicKey | None, *, limit: int = 100,
          proven: Callable[[list[Checkpoint]], Verdict | bool] | None = None) -> list[Finding]:
    """The findings. ``proven`` answers, given the stored checkpoints, whether the set-based proof
    holds (``TreeProof.holds`` with its jobs' results) when the caller ran the proof's jobs: verify
    runs them beside its own. Not holding, or no proof (SQLite), rebuilds the tree to name what is
    wrong; a part of the proof that failed (``Verdict.failed``) and whose check the rebuild did not
    name is reported as it is."""
    found: list[Finding] = []

    def add(check: str, subject: str, detail: str) -> None:
        if sum(1 for f in found if f[0] == check) < limit:
            found.append((check, subject, detail))

    checkpoints = list(tx.session.execute(select(Checkpoint).order_by(Checkpoint.tree_size, Checkpoint.id))
                       .scalars())
    origins = set(tx.session.execute(select(NetworkOrigin.origin)).scalars()) if public_key is not None else set()
    keys = NoteKeys(public_key, known_keys(tx)) if public_key is not None else None
    for cp in checkpoints:
        if keys is None:
            break
        # each note is checked under the name it was signed with (its first line, as reconcile does):
        # the origin follows the public authority, which an operator may set after checkpoints were
        # signed — but only an origin the network itself signed under (network_origins), not any the
        # key may have signed for
        name = cp.note.split("\n", 1)[0]
        key = keys.for_note(cp.note, name)
        try:
            parsed = open_note(cp.note, name, key)
        except ValueError as exc:
            add("checkpoint_signature", f"checkpoint {cp.id}", str(exc))
            continue
        late = keys.signed_after_rollout(key, parsed)
        if late:
            add("checkpoint_signature", f"checkpoint {cp.id}", late)
        elif not signed_as_stored(parsed, cp):
            add("checkpoint_signature", f"checkpoint {cp.id}", "the signed note disagrees with the stored row")
        elif name not in origins:
            add("checkpoint_origin", f"checkpoint {cp.id}",
                f"signed by the network key under {name!r}, an origin this network never signed under")

    if proven is None and tx.is_postgres:  # the set-based proof, here, one job after another
        proof = TreeProof(tx)
        proven = partial(proof.holds, tx, run_in_snapshot(tx, proof.jobs(), 1, settings=SQL_SETTINGS))
    verdict = proven(checkpoints) if proven else False
    if not verdict:
        named: set[str] = set()

        def rebuilt(check: str, subject: str, detail: str) -> None:
            named.add(check)
            add(check, subject, detail)

        _rebuild(tx, checkpoints, rebuilt)
        for check, subject, detail in getattr(verdict, "failed", ()):
            if check not in named:
                add(check, subject, f"{detail} (the set-based proof found this; the rebuild leaf by leaf "
                                    "found nothing of it: verify again, and report it if it repeats)")
    unsealed = tx.session.execute(
        select(Entry.id, Entry.cycle_date).join(SealedCycle, SealedCycle.cycle_date == Entry.cycle_date)
        .where(~exists().where(LedgerLeaf.entry_id == Entry.id)).limit(limit)).all()
    for entry_id, cycle in unsealed:
        add("entry_not_sealed", f"entry {entry_id}", f"cycle {cycle} was sealed without it")
    return found


class NoteKeys:
    """The network's public keys, the current one and those rotations retired (shared/signing_keys.py),
    picked for a checkpoint note by its signature's key hash (C2SP signed-note: the first 4 bytes of
    SHA-256(key name || 0x0A || 0x01 || public key)). A note no known key signed gets the current key,
    under which it fails as signed by no key of the network. A retired key signs for ROLLOUT after its
    retirement (hosts not restarted yet), no longer: ``signed_after_rollout``."""

    def __init__(self, current: Ed25519PublicKey, known: list[KnownKey]):
        self.current = current
        self.keys = [current, *(k.key for k in known)]
        self.retired = {raw_public(k.key): (k.key_id, k.retired_at) for k in known if k.retired_at is not None}
        self.hashes: dict[str, dict[bytes, Ed25519PublicKey]] = {}  # per key name

    def for_note(self, note: str, name: str) -> Ed25519PublicKey:
        hashes = self.hashes.get(name)
        if hashes is None:
            hashes = self.hashes[name] = {key_hash(name, key): key for key in reversed(self.keys)}
        for line in note.partition("\n\n")[2].splitlines():
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != EM_DASH or parts[1] != name:
                continue
            try:
                signed_by = base64.b64decode(parts[2])[:4]
            except ValueError:
                continue
            if signed_by in hashes:
                return hashes[signed_by]
        return self.current

    def signed_after_rollout(self, key: Ed25519PublicKey, parsed: ParsedCheckpoint) -> str | None:
        """Why a note ``key`` signed is not believed: the key was retired, and the note's time is later than
        its retirement and ROLLOUT (or the note has none). None for a note a key signed while it could."""
        retired = self.retired.get(raw_public(key))
        if retired is None:
            return None
        key_id, retired_at = retired
        stamps = [line.removeprefix("timestamp ") for line in parsed.extensions if line.startswith("timestamp ")]
        try:
            signed_at = datetime.fromisoformat(stamps[0]) if len(stamps) == 1 else None
        except ValueError:
            signed_at = None
        deadline = retired_at + ROLLOUT
        if signed_at is not None and signed_at <= deadline:
            return None
        when = f"at {stamps[0]}" if signed_at is not None else "at no time it names"
        return (f"signed {when} by the network key {key_id}, retired at {_instant(retired_at)}: a retired key "
                f"signs for {ROLLOUT.total_seconds() / 3600:g} h after its rotation, until "
                f"{_instant(deadline)} (a leaked key, or a host never given the new key)")


def _instant(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _rebuild(tx: Tx, checkpoints: list, add) -> None:
    """Rebuild the tree leaf by leaf from the recomputed hashes, naming whatever does not agree."""
    tree = merkle.CompactRange()  # over the leaves recomputed from the entries
    as_stored = merkle.CompactRange()  # over the stored leaf hashes, to check the stored subtrees
    pending = deque(checkpoints)  # in tree-size order: each is checked when the rebuilt tree reaches it
    position = 0
    # the stored subtrees are compared batch by batch with those the rebuild completes, up to a gap in
    # the leaves (leaf_missing): beyond it the rebuild's positions are no longer the stored ones
    aligned = True

    def check_roots() -> None:
        while pending and pending[0].tree_size == tree.size:
            cp = pending.popleft()
            if tree.root() != bytes(cp.root_hash):
                add("checkpoint_root_mismatch", f"checkpoint {cp.id}",
                    f"the ledger recomputed to {tree.size} leaves does not give the signed root")

    check_roots()
    for batch, recomputed in _recomputed_batches(tx):
        compare: list[tuple[int, int, bytes]] = []
        for row in batch:
            if row.leaf_index != position:
                add("leaf_missing", f"leaf {position}", f"leaves jump from {position - 1} to {row.leaf_index}")
                position = row.leaf_index
                aligned = False
            stored = bytes(row.leaf_hash)
            h = recomputed.get(row.entry_id)
            if h is None:
                add("sealed_entry_missing", f"entry {row.entry_id}", f"sealed as leaf {row.leaf_index}, now gone")
                h = stored
            elif h != stored:
                add("leaf_hash_mismatch", f"entry {row.entry_id}",
                    f"leaf {row.leaf_index}: the entry, its postings, lot consumptions or obligation lines "
                    "changed since it was sealed")
            tree.append(h)
            completed = as_stored.append(stored)
            if aligned:
                compare += completed
            position += 1
            check_roots()
        _compare_nodes(tx, compare, add)
    for cp in pending:
        add("checkpoint_root_mismatch", f"checkpoint {cp.id}",
            f"signed for {cp.tree_size} leaves; the tree has {tree.size}")


def _compare_nodes(tx: Tx, completed: list[tuple[int, int, bytes]], add) -> None:
    """Each subtree the rebuild over the stored leaf hashes completed against its stored row."""
    stored = _stored_nodes(tx, completed)
    for level, index, h in completed:
        first, last = index << level, ((index + 1) << level) - 1
        row = stored.get((level, index))
        if row is None:
            add("stored_tree_mismatch", f"level {level} node {index}",
                f"the tree store has no row for the subtree of leaves {first}-{last}: proofs through it fail")
        elif row != h:
            add("stored_tree_mismatch", f"level {level} node {index}",
                f"the stored subtree of leaves {first}-{last} does not hash from the stored leaves: "
                "proofs through it fail")


def _stored_nodes(tx: Tx, completed: list[tuple[int, int, bytes]]) -> dict[tuple[int, int], bytes]:
    """The stored rows of the given subtrees, in one query: the subtrees one batch of leaves completes
    are, on each level, one run of indices, so each level is one range of the primary key."""
    runs: dict[int, list[int]] = {}
    for level, index, _ in completed:
        low, high = runs.setdefault(level, [index, index])
        runs[level] = [min(low, index), max(high, index)]
    if not runs:
        return {}
    rows = tx.session.execute(select(LedgerNode.level, LedgerNode.node_index, LedgerNode.hash).where(or_(*(
        and_(LedgerNode.level == level, LedgerNode.node_index.between(low, high))
        for level, (low, high) in runs.items()))))
    return {(int(level), int(index)): bytes(h) for level, index, h in rows}


class TreeProof:
    """The same checks as ``_rebuild``, proven set-based inside PostgreSQL, as independent read-only jobs.

    1. the leaf indices are 0 … n-1 (a count and a maximum);
    2. every leaf's entry exists and still hashes to the leaf (``bad_leaves_sql``, one job per range
       of entry ids);
    3. every stored subtree is the node hash of its two children, level by level up from the leaves
       (one job per range of each level's nodes), and every complete subtree of the tree is stored;
    4. every checkpoint's root, folded from the complete subtrees of its size, is the signed root.

    With 2 and 3 the tree rebuilt from the entries *is* the stored tree, so 4 checks the checkpoints
    against the ledger itself. The jobs run side by side in one snapshot (shared/db/snapshot.py);
    if any fails, verify rebuilds leaf by leaf to name what is wrong. On a sound ledger only hashes
    of mismatches would ever cross the wire, and none do.
    """

    NODES_PER_JOB = 1 << 20

    def __init__(self, tx: Tx, slices: int = 1):
        self.size, self.last = tx.session.execute(
            text("SELECT COUNT(*), MAX(leaf_index) FROM ledger_leaves")).one()
        self.contiguous = self.size == 0 or self.last == self.size - 1
        self.bounds = self._bounds(tx, slices) if self.contiguous and self.size else []
        self.parts: list[Finding | None] = []  # beside each job: what its failing means, if exact

    def _bounds(self, tx: Tx, slices: int) -> list[str]:
        """Entry ids cutting the leaves into ``slices`` ranges of about equal size: from leaves spread
        evenly over the tree, ordered by the database (its comparison is the ranges')."""
        if slices <= 1:
            return []
        spread = sorted({self.size * n // (16 * slices) for n in range(16 * slices)})
        ids = list(tx.session.execute(text(
            "SELECT entry_id FROM ledger_leaves WHERE leaf_index = ANY(:at) ORDER BY entry_id"),
            {"at": spread}).scalars())
        return list(dict.fromkeys(ids[len(ids) * n // slices] for n in range(1, slices)))

    def jobs(self) -> list:
        """Each job returns True when its part holds. The leaf ranges first: they cost the most."""
        if not self.contiguous or not self.size:
            return []
        edges = [None, *self.bounds, None]
        jobs = [partial(_leaves_hold, low, high) for low, high in zip(edges, edges[1:])]
        parts: list[Finding | None] = [None] * len(jobs)  # the fast path: only the rebuild's exact form decides
        level = 1
        while self.size >> level:
            nodes = self.size >> level
            for first in range(0, nodes, self.NODES_PER_JOB):
                last = min(first + self.NODES_PER_JOB, nodes)
                jobs.append(partial(_nodes_hold, level, first, last))
                parts.append(("stored_tree_mismatch", f"level {level} nodes {first}-{last - 1}",
                              "a stored subtree here is missing or is not the node hash of its two children"))
            level += 1
        self.parts = parts
        return jobs

    def holds(self, tx: Tx, results: list[bool], checkpoints: list) -> Verdict:
        """Given the jobs' results: is the tree sound, and does it give every checkpoint's root? Not
        holding, the verdict names the parts that failed which the rebuild checks exactly."""
        if not self.contiguous:
            return Verdict(False, (("leaf_missing", f"tree of {self.size}",
                                    f"{self.size} leaves, the last at index {self.last}"),))
        if not self.size:  # a new network signs the empty tree every minute: size 0, the empty root
            failed = tuple(("checkpoint_root_mismatch", f"checkpoint {cp.id}",
                            f"signed for {cp.tree_size} leaves; the tree is empty and does not give the signed root")
                           for cp in checkpoints if cp.tree_size != 0 or bytes(cp.root_hash) != merkle.EMPTY_ROOT)
            return Verdict(not failed, failed)
        if not all(results):
            return Verdict(False, tuple(part for part, held in zip(self.parts, results) if not held and part))
        stored = StoredTree(tx)  # memoised: consecutive checkpoints share most of their subtrees
        failed = []
        for cp in checkpoints:
            try:
                held = cp.tree_size <= self.size and stored.root(cp.tree_size) == bytes(cp.root_hash)
            except LookupError:
                held = False
            if not held:
                failed.append(("checkpoint_root_mismatch", f"checkpoint {cp.id}",
                               f"the stored tree of {cp.tree_size} leaves does not give the signed root"))
        return Verdict(not failed, tuple(failed))


def _leaves_hold(low: str | None, high: str | None, connection: Connection) -> bool:
    """No leaf whose entry id is in [low, high) is missing its entry or hashes differently."""
    params = {name: value for name, value in (("low", low), ("high", high)) if value is not None}
    return connection.execute(text(bad_leaves_sql(low is not None, high is not None)), params).first() is None


def _nodes_hold(level: int, first: int, last: int, connection: Connection) -> bool:
    """The stored nodes ``first`` … ``last - 1`` of ``level`` are the hashes of their stored children."""
    children = ("SELECT leaf_index AS i, leaf_hash AS h FROM ledger_leaves "
                "WHERE leaf_index >= :low AND leaf_index < :high" if level == 1 else
                "SELECT node_index AS i, hash AS h FROM ledger_nodes "
                f"WHERE level = {level - 1} AND node_index >= :low AND node_index < :high")
    good = connection.execute(text(f"""
        SELECT COUNT(*) FROM ledger_nodes p JOIN ({children}) a ON a.i = 2 * p.node_index
        JOIN ({children}) b ON b.i = 2 * p.node_index + 1
        WHERE p.level = :level AND p.node_index >= :first AND p.node_index < :last
          AND p.hash = sha256('\\x01'::bytea || a.h || b.h)"""),
        {"level": level, "first": first, "last": last, "low": 2 * first, "high": 2 * last}).scalar_one()
    return good == last - first


def _recomputed_batches(tx: Tx) -> Iterator[tuple[list, dict[str, bytes]]]:
    """Stored leaves in index order with the hashes recomputed from the entries (absent: entry gone).

    PostgreSQL encodes and hashes in the database (sha256() over the same canonical bytes), so
    only hashes cross the wire; elsewhere Python encodes each batch with five set-based queries.
    """
    after = -1
    if tx.is_postgres:  # JIT compiling the encoding costs more than running it, every batch
        tx.session.execute(text("SET LOCAL jit = off"))
    while True:
        if tx.is_postgres:
            rows = tx.session.execute(text(LEAVES_SQL), {"after": after, "limit": BATCH}).all()
            recomputed = {row.entry_id: bytes(row.recomputed) for row in rows if row.present}
        else:
            rows = tx.session.execute(select(LedgerLeaf.leaf_index, LedgerLeaf.entry_id, LedgerLeaf.leaf_hash)
                                      .where(LedgerLeaf.leaf_index > after).order_by(LedgerLeaf.leaf_index)
                                      .limit(BATCH)).all()
            recomputed = hash_entries(tx, [row.entry_id for row in rows])
        if not rows:
            return
        yield rows, recomputed
        after = rows[-1].leaf_index

