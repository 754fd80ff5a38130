"""Sealing committed entries into the tree, and reading roots and proofs back from the store.

Sealing order is commit-discovery order: each pass appends the committed entries
not yet sealed, ordered by (posted_at, id) within each search of the pass (the recent
id range first, then, if that came up short, the whole of the open cycles — in the sealing
job's passes only if the recent range was not searched to its end; see ``seal_batch``). An entry that commits
late with an earlier ``posted_at`` than entries already sealed is appended when it
is found, so leaf order is not posted_at order; the leaf index records the order.
Only cycles not yet fully sealed are searched: a closed cycle takes no more entries
(writers hold it FOR SHARE, closing takes it FOR UPDATE), so once a pass finds none
of its entries unsealed (a pass that searched whole) it is recorded in ``sealed_cycles`` and
never searched again.

One sealer at a time (an advisory lock on PostgreSQL, the single writer on SQLite);
the write path never waits for a hash.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import exists, func, insert, select, text, true

from shared.db.database import Tx
from shared.db.lists import among
from shared.models import Cycle, Entry, LedgerLeaf, LedgerNode, SealedCycle
from shared.transparency import merkle
from shared.transparency.encoding import hash_entries, sql_hash_entries

SEAL_LOCK = 7242004
BATCH = 10_000
LOOKBACK = 2 * BATCH
SCAN = LOOKBACK + 2 * BATCH


def tree_size(tx: Tx) -> int:
    last = tx.session.execute(select(func.max(LedgerLeaf.leaf_index))).scalar_one()
    return 0 if last is None else int(last) + 1


def _unsealed(limit: int | None = None, through_cycle=None):
    open_cycles = select(Cycle.cycle_date).where(Cycle.cycle_date.not_in(select(SealedCycle.cycle_date)))
    query = (select(Entry.id).where(Entry.cycle_date.in_(open_cycles),
                                    ~exists().where(LedgerLeaf.entry_id == Entry.id)))
    if through_cycle is not None:
        query = query.where(Entry.cycle_date <= through_cycle)
    query = query.order_by(Entry.posted_at, Entry.id)
    return query.limit(limit) if limit else query


def _recent(tx: Tx, size: int, limit: int) -> tuple[list[str], bool]:
    """Unsealed entries among the ``SCAN`` ids from the smallest id of the last ``LOOKBACK`` leaves
    on, ordered by (posted_at, id), at most ``limit``: every step an index range or look-up, so the
    cost does not grow with the open cycle or the tree. And whether the window was full (``SCAN``
    ids): then ids beyond it were not searched."""
    if size < LOOKBACK:
        return [], False
    # The last leaves' entries, read as one range of the leaf index: their smallest id is the
    # window's floor, and they are nearly all of the window's sealed entries. (min() over the table
    # walked the entry_id index from the ledger's first id: 87 ms at 1,000,000 leaves on SQLite.)
    recent = set(tx.session.execute(
        select(LedgerLeaf.entry_id).where(LedgerLeaf.leaf_index >= size - LOOKBACK)).scalars())
    open_cycles = select(Cycle.cycle_date).where(Cycle.cycle_date.not_in(select(SealedCycle.cycle_date)))
    window = tx.session.execute(select(Entry.id).where(
        Entry.id >= min(recent), Entry.cycle_date.in_(open_cycles)).order_by(Entry.id).limit(SCAN)).scalars().all()
    # the rest of the window is looked up: the new entries, and any sealed before the last leaves
    # (an id older than the floor's, sealed earlier) — each window entry checked, as before, with
    # tens of look-ups a pass instead of SCAN; then the fresh ones' times, to order them
    others = [entry_id for entry_id in window if entry_id not in recent]
    sealed = set(tx.session.execute(select(LedgerLeaf.entry_id).where(
        among(tx.dialect, LedgerLeaf.entry_id, others))).scalars()) if others else set()
    unsealed = [entry_id for entry_id in others if entry_id not in sealed]
    fresh = sorted(tx.session.execute(select(Entry.id, Entry.posted_at).where(
        among(tx.dialect, Entry.id, unsealed))).all(), key=lambda row: (row.posted_at, row.id)) if unsealed else []
    return [row.id for row in fresh[:limit]], len(window) == SCAN


def seal_batch(tx: Tx, limit: int = BATCH, *, search_all: bool = True) -> int:
    """Append up to ``limit`` unsealed committed entries to the tree; returns how many.

    Entry ids are writer-made and sortable by creation time, so the entries committed since the
    last pass are almost all above the smallest id of the last ``LOOKBACK`` leaves: that range is
    searched first (``_recent``: index ranges, not the whole open cycle). Only when it yields fewer
    than ``limit`` is the whole of the open cycles searched — so a batch that returns less than
    ``limit`` has, as before, sealed every committed entry it could see, including one that
    committed late with an old id. Without ``search_all`` (the sealing job's passes every 10 s) that
    search, whose cost follows the open cycles' volume, is left to the next pass with it (the
    checkpoint's, every minute): an entry that committed late is sealed within a minute, as every
    entry is in a checkpoint within a minute. A tree smaller than ``LOOKBACK`` is always searched whole.
    """
    if tx.is_postgres:
        tx.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEAL_LOCK})
        tx.session.execute(text("SET LOCAL jit = off"))  # short queries; compiling them costs seconds
    size = tree_size(tx)
    ids, window_full = _recent(tx, size, limit)
    # a full window that gave less than a batch left ids beyond it unsearched (an old id sealed late
    # holds the floor back until LOOKBACK more leaves follow): search whole then too
    search_all = search_all or size < LOOKBACK or window_full
    if len(ids) < limit and search_all:
        ids += tx.session.execute(_unsealed(limit - len(ids)).where(Entry.id.not_in(ids) if ids else true())
                                  ).scalars()
    if ids:
        hashes = sql_hash_entries(tx, ids) if tx.is_postgres else hash_entries(tx, ids)
        tree = merkle.CompactRange(size, [subtree(tx, level, index) for level, index in merkle.edge_ranges(size)])
        leaves, nodes = [], []
        for entry_id in ids:
            leaves.append({"leaf_index": tree.size, "entry_id": entry_id, "leaf_hash": hashes[entry_id],
                           "sealed_at": tx.now})
            nodes += [{"level": level, "node_index": index, "hash": h}
                      for level, index, h in tree.append(hashes[entry_id])]
        _insert(tx, LedgerLeaf, leaves)
        _insert(tx, LedgerNode, nodes)
    if len(ids) < limit and search_all:
        _record_sealed_cycles(tx)
    return len(ids)


def _insert(tx: Tx, model, rows: list[dict]) -> None:
    if not rows:
        return
    columns = [column.name for column in model.__table__.columns]
    if tx.is_postgres:  # COPY: one statement for the batch, constraints checked as always
        cursor = tx.session.connection().connection.driver_connection.cursor()
        with cursor.copy(f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([_naive_utc(row[name]) for name in columns])
        return
    for start in range(0, len(rows), 5000):
        tx.session.execute(insert(model.__table__), rows[start:start + 5000])


def _naive_utc(value):
    """Timestamps are stored as naive UTC (shared.db.types.UTCDateTime); COPY bypasses the type."""
    return value.astimezone(timezone.utc).replace(tzinfo=None) if isinstance(value, datetime) else value


def _record_sealed_cycles(tx: Tx) -> None:
    done = select(Cycle.cycle_date).where(
        Cycle.status == "closed", Cycle.cycle_date.not_in(select(SealedCycle.cycle_date)),
        ~exists().where(Entry.cycle_date == Cycle.cycle_date,
                        ~exists().where(LedgerLeaf.entry_id == Entry.id)))
    days = list(tx.session.execute(done).scalars())
    if days:
        tx.session.execute(insert(SealedCycle.__table__), [{"cycle_date": d, "sealed_at": tx.now} for d in days])


def seal_all(tx: Tx) -> int:
    total = 0
    while True:
        sealed = seal_batch(tx)
        total += sealed
        if sealed < BATCH:
            return total


def unsealed_through(tx: Tx, cycle) -> int:
    """How many committed entries of cycles up to ``cycle`` are not sealed yet."""
    return tx.session.execute(select(func.count()).select_from(_unsealed(through_cycle=cycle).subquery())
                              ).scalar_one()


def subtree(tx: Tx, level: int, index: int) -> bytes:
    if level == 0:
        found = tx.session.execute(select(LedgerLeaf.leaf_hash).where(LedgerLeaf.leaf_index == index)).scalar()
    else:
        found = tx.session.execute(select(LedgerNode.hash).where(
            LedgerNode.level == level, LedgerNode.node_index == index)).scalar()
    if found is None:
        raise LookupError(f"the tree store has no subtree at level {level}, index {index}")
    return bytes(found)


class StoredTree:
    """MTH of any range the RFC algorithms ask for, from complete subtrees, memoised."""

    def __init__(self, tx: Tx):
        self.tx = tx
        self.memo: dict[tuple[int, int], bytes] = {}

    def range_hash(self, start: int, end: int) -> bytes:
        if (start, end) in self.memo:
            return self.memo[(start, end)]
        n = end - start
        if n == 0:
            h = merkle.EMPTY_ROOT
        elif n & (n - 1) == 0 and start % n == 0:
            h = subtree(self.tx, n.bit_length() - 1, start // n)
        else:
            k = merkle.split_point(n)
            h = merkle.node_hash(self.range_hash(start, start + k), self.range_hash(start + k, end))
        self.memo[(start, end)] = h
        return h

    def root(self, size: int) -> bytes:
        return self.range_hash(0, size)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_path(index, size, self.range_hash)

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        return merkle.consistency_path(old_size, new_size, self.range_hash)
