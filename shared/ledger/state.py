"""Loading and locking what a unit of work changes: members first (in id order), then their lots.

Every change to a lot happens under its member's row lock, so locking members in one
global order (sorted ids) is the whole concurrency story: no double spend, no lost
update, no deadlock cycles. SQLite's single writer gives the same guarantee.
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import or_, select

from shared.db.database import Tx
from shared.db.lists import among_bound, among_rows, chunks, per_dialect
from shared.ledger.journal import MemberState
from shared.ledger.rules import LotState
from shared.models import Lot, Member

lots_table = Lot.__table__
members_table = Member.__table__


@per_dialect
def _lock_query(dialect: str):
    query = (
        select(members_table.c.id, members_table.c.available, members_table.c.held)
        .where(among_bound(dialect, members_table.c.id, "ids"), members_table.c.status == "active",
               members_table.c.merged_into.is_(None))
        .order_by(members_table.c.id)
    )
    return query.with_for_update() if dialect == "postgresql" else query


def lock_members(tx: Tx, member_ids: Iterable[str]) -> dict[str, MemberState]:
    """Lock the members' rows in id order and return their balances (missing, erased or merged ids are left out)."""
    found: dict[str, MemberState] = {}
    for row in among_rows(tx, _lock_query(tx.dialect), member_ids):
        found[row.id] = MemberState(row.id, row.available, row.held)
    return found


@per_dialect
def _survivors_query(dialect: str):
    return select(members_table.c.id, members_table.c.merged_into).where(
        among_bound(dialect, members_table.c.id, "ids"), members_table.c.merged_into.is_not(None))


@per_dialect
def _lots_query(dialect: str, by: str):
    """Lots by member (open ones only), by id or by earning entry."""
    query = select(lots_table).where(among_bound(dialect, lots_table.c[by], "ids"))
    return query.where(lots_table.c.remaining > 0) if by == "member_id" else query


def survivors(tx: Tx, member_ids: Iterable[str]) -> dict[str, str]:
    """Duplicate -> survivor, for the ids that were merged into another member."""
    found: dict[str, str] = {}
    for row in among_rows(tx, _survivors_query(tx.dialect), member_ids):
        found[row.id] = row.merged_into
    return found


def _lot(row) -> LotState:
    return LotState(
        id=row.id, member_id=row.member_id, entry_id=row.entry_id, funder_partner_id=row.funder_partner_id,
        billing=row.billing, contract_id=row.contract_id, points=row.points, remaining=row.remaining,
        reserved=row.reserved, issued_at=row.issued_at, expires_at=row.expires_at,
        bought_out=row.bought_out_at is not None,
    )


def load_lots(tx: Tx, member_ids: Iterable[str] = (), lot_ids: Iterable[str] = (),
              entry_ids: Iterable[str] = ()) -> dict[str, LotState]:
    """Open lots of the members, plus any lots named by id or by earning entry."""
    result: dict[str, LotState] = {}
    for row in among_rows(tx, _lots_query(tx.dialect, "member_id"), member_ids):
        result[row.id] = _lot(row)
    extra = [lot_id for lot_id in set(lot_ids) if lot_id not in result]
    for row in among_rows(tx, _lots_query(tx.dialect, "id"), extra):
        result[row.id] = _lot(row)
    for row in among_rows(tx, _lots_query(tx.dialect, "entry_id"), entry_ids):
        result.setdefault(row.id, _lot(row))
    return result


def load_due_lots(tx: Tx, member_ids: Iterable[str], now) -> dict[str, LotState]:
    """The members' lots that are due (``expires_at <= now``) and have free points: what expiry takes."""
    result: dict[str, LotState] = {}
    for chunk in chunks(member_ids):
        query = select(lots_table).where(lots_table.c.member_id.in_(chunk), lots_table.c.remaining > 0,
                                         lots_table.c.expires_at <= now,
                                         lots_table.c.remaining > lots_table.c.reserved)
        for row in tx.session.execute(query):
            result[row.id] = _lot(row)
    return result


def member_lots(lots: dict[str, LotState], member_id: str) -> list[LotState]:
    return [lot for lot in lots.values() if lot.member_id == member_id]


__all__ = ["lock_members", "load_lots", "load_due_lots", "member_lots", "chunks", "among_rows", "survivors", "or_"]
