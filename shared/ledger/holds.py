"""Hold timeouts: an open hold past its ``expires_at`` releases its points, exactly once."""

from __future__ import annotations

from sqlalchemy import literal_column, select

from shared.db.database import Tx
from shared.ledger import expiry
from shared.ledger.cycles import enter_open_cycle
from shared.ledger.journal import Journal
from shared.ledger.posting import expire_hold
from shared.ledger.state import load_lots, lock_members
from shared.models import Hold, HoldLot

holds_t, hold_lots_t = Hold.__table__, HoldLot.__table__


def expire_holds(tx: Tx, limit: int) -> int:
    """Release at most ``limit`` timed-out holds; returns how many were released."""
    rows = tx.session.execute(
        select(holds_t.c.id, holds_t.c.member_id).where(holds_t.c.status == literal_column("'open'"), holds_t.c.expires_at <= tx.now)
        .order_by(holds_t.c.expires_at).limit(limit)
    ).all()
    if not rows:
        return 0
    journal = Journal(tx, enter_open_cycle(tx))
    journal.members, holds = _lock_owners(tx, [row.id for row in rows], {row.member_id for row in rows})
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
    return released


def _lock_owners(tx: Tx, hold_ids: list[str], owners: set[str]) -> tuple[dict, list]:
    """Lock the members owning the holds and read the holds still open under those locks.

    The owners were read before their locks. A capture may have resolved a hold meanwhile, and a
    merge that held an owner's lock has moved its holds to the survivor (the owner, merged, is no
    longer locked): the holds are read again once locked, and a survivor they name now is locked
    too, so the hold is released in this batch, not left open until the job's next run. Each round
    follows a merge that committed. A survivor whose id sorts before members locked already would
    be locked out of the global order: on PostgreSQL the locks are then taken again, all in id
    order, from a savepoint set before them (as ``posting._lock_members`` does). SQLite's one writer
    sees no merge commit meanwhile."""
    wanted = set(owners)
    while True:
        savepoint = tx.session.begin_nested() if tx.is_postgres else None
        members = lock_members(tx, wanted)
        holds = tx.session.execute(
            select(holds_t).where(holds_t.c.id.in_(hold_ids), holds_t.c.status == "open")
        ).all()
        moved = {row.member_id for row in holds} - wanted
        if moved:
            wanted |= moved
            if savepoint is not None:
                savepoint.rollback()  # lets go of the locks taken since; taken again in order
            continue
        if savepoint is not None:
            savepoint.commit()
        return members, holds
