"""Expiry: what remains of a lot after its ``expires_at`` moves to ``network:expired`` (breakage).

Points reserved by an open hold do not expire while held; if their lot is due when
the hold is released, they expire at once. The job works in bounded batches and is
idempotent: a lot with nothing free left is never touched again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from shared.db.database import Tx
from shared.jobs.batches import Batch
from shared.ledger.cycles import enter_open_cycle
from shared.ledger.due import load_due
from shared.ledger.expiry_pg import expire_locked
from shared.ledger.journal import Journal, MemberState
from shared.ledger.rules import LotState, breakage_lines, consumption_key
from shared.ledger.state import load_due_lots, lock_members_following_merges, survivors_of_missing
from shared.models import Lot
from shared.partners.contracts import terms_by_id

lots_t = Lot.__table__


def expire_due(journal: Journal, member: MemberState, lots: list[LotState], now: datetime) -> dict | None:
    """Expire the member's due lots inside this unit of work; returns the expiry entry, if any."""
    return forfeit(journal, member, [lot for lot in lots if lot.expires_at <= now])


def forfeit(journal: Journal, member: MemberState, lots: list[LotState], *, request: dict | None = None) -> dict | None:
    """Forfeit what is free in ``lots`` as breakage (an ``expiry`` entry, with expiry's money rules).

    Used by expiry and by erasure (``request`` then says why); returns the entry, if any."""
    return forfeit_points(journal, member, [(lot, lot.free) for lot in lots], request=request)


def forfeit_points(journal: Journal, member: MemberState, taken: list[tuple[LotState, int]], *,
                   request: dict | None = None) -> dict | None:
    """Forfeit ``points`` of each lot (at most what is free in it) as breakage: one ``expiry`` entry."""
    due = sorted(((lot, min(points, lot.free)) for lot, points in taken if min(points, lot.free) > 0),
                 key=lambda pair: consumption_key(pair[0]))
    if not due:
        return None
    total = sum(points for _, points in due)
    terms = terms_by_id(journal.tx, {lot.contract_id for lot, _ in due if lot.billing == "prepaid"})
    entry = journal.entry("expiry", total, member_id=member.id, request=request)
    for lot, points in due:
        journal.move(entry, lot, points)
        for line in breakage_lines(lot, points, terms.get(lot.contract_id)):
            journal.line(entry, line)
    journal.transfer(entry, f"member:{member.id}", "network:expired", total)
    member.change(available=-total)
    entry["result"] = {"entry_id": entry["id"], "kind": "expiry", "member_id": member.id, "points": total,
                       "lots": [lot.id for lot, _ in due], "balance": member.balance()}
    return entry


def expire_batch(tx: Tx, limit: int, *, in_sql: bool | None = None) -> int:
    """Expire the due lots of the members owning the next ``limit`` due lots; returns the points expired."""
    return expire_next(tx, limit, in_sql=in_sql).done


def expire_next(tx: Tx, limit: int, *, in_sql: bool | None = None) -> Batch:
    """``expire_batch``, for the job: also says which members it read as owning due lots.

    The members are read before their locks: a spend of one of them that held its lock meanwhile has
    expired its due lots first, and the batch may find nothing left under the locks. It then still
    reads as due (``Batch.read``), so that the job's run goes on to the due lots after them.

    Set-based: one read finds the members (through the partial index of open lots by expiry,
    so lots already spent or expired are never walked again), one locks them in id order (and
    follows a member merged meanwhile to its survivor, ``lock_members_following_merges``), one
    reads only their due lots with free points, and the journal writes each table with one
    statement. Each member gets one ``expiry`` entry for all its due lots, built by ``forfeit``
    (the same rows, money lines and webhook events as every other expiry path). On PostgreSQL
    (``in_sql``, the default there) the lots' side is done in SQL instead (``expiry_pg``), with the
    same rows."""
    due = (select(lots_t.c.member_id).where(lots_t.c.remaining > 0, lots_t.c.expires_at <= tx.now,
                                            lots_t.c.remaining > lots_t.c.reserved)
           .order_by(lots_t.c.expires_at).limit(limit).subquery())
    # the members, not the lots: one row per member reaches Python
    candidates = tx.session.execute(select(due.c.member_id).distinct()).scalars().all()
    if not candidates:
        return Batch(0)
    read = frozenset(candidates)
    journal = Journal(tx, enter_open_cycle(tx))
    # a member merged while this waited: its lots expire on the survivor, in this batch
    journal.members = lock_members_following_merges(tx, candidates, survivors_of_missing(tx, candidates))
    # the balance each points.expired carries: this batch expires every due lot of theirs, so only
    # their holds past timeout are left to apply (one read, and only with points held)
    load_due(journal, lots=False)
    if in_sql is None:
        in_sql = tx.is_postgres
    if in_sql:
        return Batch(expire_locked(journal, tx.now), read)
    journal.lots = load_due_lots(tx, journal.members, tx.now)  # read after the lock: nothing moves them now
    by_member: dict[str, list[LotState]] = {}
    for lot in journal.lots.values():
        by_member.setdefault(lot.member_id, []).append(lot)
    expired = 0
    for member_id in sorted(by_member):
        entry = expire_due(journal, journal.members[member_id], by_member[member_id], tx.now)
        expired += entry["points"] if entry else 0
    journal.flush()
    return Batch(expired, read)
