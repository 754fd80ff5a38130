"""Hold timeouts: an open hold past its ``expires_at`` releases its points, exactly once."""

from __future__ import annotations

from sqlalchemy import literal_column, select

from shared.db.database import Tx
from shared.jobs.batches import Batch
from shared.ledger import expiry
from shared.ledger.cycles import enter_open_cycle
from shared.ledger.due import load_due
from shared.ledger.journal import Journal
from shared.ledger.posting import expire_hold
from shared.ledger.state import load_lots, lock_members_following_merges
from shared.models import Hold, HoldLot

holds_t, hold_lots_t = Hold.__table__, HoldLot.__table__


def expire_holds(tx: Tx, limit: int) -> int:
    """Release at most ``limit`` timed-out holds; returns how many were released."""
    return expire_holds_next(tx, limit).done


def expire_holds_next(tx: Tx, limit: int) -> Batch:
    """``expire_holds``, for the job: also says which timed-out holds it read (their members' spend that
    held a lock meanwhile may have released them all: the run goes on, shared/jobs/batches.py)."""
    rows = tx.session.execute(
        select(holds_t.c.id, holds_t.c.member_id).where(holds_t.c.status == literal_column("'open'"), holds_t.c.expires_at <= tx.now)
        .order_by(holds_t.c.expires_at).limit(limit)
    ).all()
    if not rows:
        return Batch(0)
    journal = Journal(tx, enter_open_cycle(tx))
    journal.members, holds = _lock_owners(tx, [row.id for row in rows], {row.member_id for row in rows})
    # the balance each points.expired carries is the one a spend would find: a member's lapsed holds
    # beyond this bounded batch, and its lots past expiry, count as released and expired
    load_due(journal)
    reserved = tx.session.execute(
        select(hold_lots_t).where(hold_lots_t.c.hold_id.in_([h.id for h in holds])).order_by(hold_lots_t.c.seq)
    ).all()
    journal.lots = load_lots(tx, member_ids=journal.members, lot_ids={r.lot_id for r in reserved})
    released = 0
    for row in holds:
        if row.member_id not in journal.members:
            continue
        expire_hold(journal, row, reserved)
        released += 1
    for member_id, member in journal.members.items():
        lots = [lot for lot in journal.lots.values() if lot.member_id == member_id]
        expiry.expire_due(journal, member, lots, tx.now)
    journal.flush()
    return Batch(released, frozenset(row.id for row in rows))


def _lock_owners(tx: Tx, hold_ids: list[str], owners: set[str]) -> tuple[dict, list]:
    """Lock the members owning the holds and read the holds still open under those locks.

    The owners were read before their locks. A capture may have resolved a hold meanwhile, and a
    merge that held an owner's lock has moved its holds to the survivor: the holds are read again once
    locked, and a survivor they name now is locked too (``lock_members_following_merges``), so the
    hold is released in this batch, not left open until the job's next run."""
    holds: list = []

    def more(members: dict) -> set[str]:
        holds[:] = tx.session.execute(
            select(holds_t).where(holds_t.c.id.in_(hold_ids), holds_t.c.status == "open")
        ).all()
        return {row.member_id for row in holds}
    return lock_members_following_merges(tx, owners, more), holds
