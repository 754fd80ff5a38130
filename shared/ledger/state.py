"""Loading and locking what a unit of work changes: members first (in id order), then their lots.

Every change to a lot happens under its member's row lock, so locking members in one
global order (sorted ids) is the whole concurrency story: no double spend, no lost
update, no deadlock cycles. SQLite's single writer gives the same guarantee.
"""

from __future__ import annotations

from typing import Callable, Iterable

from sqlalchemy import String, bindparam, func, literal_column, or_, select, true

from shared.db.database import Tx
from shared.db.lists import VarcharArray, among_bound, among_rows, chunks, per_dialect
from shared.ledger.journal import MemberState
from shared.ledger.rules import LotState, consumption_key
from shared.models import Lot, Member

lots_table = Lot.__table__
members_table = Member.__table__


@per_dialect
def _lock_query(dialect: str):
    # the tier columns too: a posting with earns reads them under the same locks (MemberTiers.load)
    query = (
        select(members_table.c.id, members_table.c.available, members_table.c.held, members_table.c.tier,
               members_table.c.tier_since, members_table.c.tier_anniversary_at)
        .where(among_bound(dialect, members_table.c.id, "ids"), members_table.c.status == "active",
               members_table.c.merged_into.is_(None))
        .order_by(members_table.c.id)
    )
    return query.with_for_update() if dialect == "postgresql" else query


def lock_members(tx: Tx, member_ids: Iterable[str], *, rows: list | None = None) -> dict[str, MemberState]:
    """Lock the members' rows in id order and return their balances (missing, erased or merged ids are
    left out). ``rows``: the rows read are appended to it (their tier columns save a posting a read)."""
    found: dict[str, MemberState] = {}
    for row in among_rows(tx, _lock_query(tx.dialect), member_ids):
        found[row.id] = MemberState(row.id, row.available, row.held)
        if rows is not None:
            rows.append(row)
    return found


def lock_members_following_merges(tx: Tx, member_ids: Iterable[str], more: Callable[[dict], set[str]], *,
                                  rows: list | None = None, savepoint: bool = True) -> dict[str, MemberState]:
    """``lock_members``, for a unit that read whose members to lock before it locked them.

    A merge that held one of their locks meanwhile has moved that member's lots and holds to the
    survivor and marked it merged (it is left out of the locks). ``more(members)``, asked once the
    locks are taken, names the members that must be locked too (the survivors that own now what was
    read); they are added and the locks taken again, until it names none (each round follows a merge
    that committed). A survivor's id may sort before members locked already: on PostgreSQL the locks
    are taken again, all in id order, from a savepoint set before them (``savepoint``: False when the
    caller knows no round can follow), so no lock is ever taken out of the global order (one could
    deadlock with a writer holding the survivor and waiting for one of ours). SQLite's one writer sees
    no merge commit meanwhile. ``rows``: as ``lock_members``'s, those of the last round."""
    wanted = set(member_ids)
    while True:
        point = tx.session.begin_nested() if savepoint and tx.is_postgres else None
        if rows is not None:
            rows.clear()
        members = lock_members(tx, wanted, rows=rows)
        added = more(members) - wanted
        if added:
            wanted |= added
            if point is not None:
                point.rollback()  # lets go of the locks taken since; taken again in order
            continue
        if point is not None:
            point.commit()
        return members


@per_dialect
def _survivors_query(dialect: str):
    return select(members_table.c.id, members_table.c.merged_into).where(
        among_bound(dialect, members_table.c.id, "ids"), members_table.c.merged_into.is_not(None))


def is_open(lot):
    """``remaining > 0`` as the second column of ix_lots_member_order holds it, so that a member's open
    lots are read as one range of that index (SQLite matches an indexed expression only when the
    query compares the very same expression, written out: ``(remaining > 0) = 1``)."""
    return (lot.remaining > literal_column("0")) == true()


@per_dialect
def _lots_query(dialect: str, by: str):
    """Lots by member (open ones only), by id or by earning entry."""
    query = select(lots_table).where(among_bound(dialect, lots_table.c[by], "ids"))
    return query.where(is_open(lots_table.c)) if by == "member_id" else query


def survivors(tx: Tx, member_ids: Iterable[str]) -> dict[str, str]:
    """Duplicate -> survivor, for the ids that were merged into another member."""
    found: dict[str, str] = {}
    for row in among_rows(tx, _survivors_query(tx.dialect), member_ids):
        found[row.id] = row.merged_into
    return found


def survivors_of_missing(tx: Tx, member_ids: Iterable[str]) -> Callable[[dict], set[str]]:
    """``more`` for ``lock_members_following_merges`` when the members were read before their locks: the
    survivor of one merged since it was read (one merged, erased or unknown now is left out of the locks)."""
    wanted = set(member_ids)

    def more(members: dict) -> set[str]:
        missing = wanted - members.keys()
        return set(survivors(tx, missing).values()) if missing else set()
    return more


def _lot(row) -> LotState:
    return LotState(
        id=row.id, member_id=row.member_id, entry_id=row.entry_id, funder_partner_id=row.funder_partner_id,
        billing=row.billing, contract_id=row.contract_id, points=row.points, remaining=row.remaining,
        reserved=row.reserved, issued_at=row.issued_at, expires_at=row.expires_at,
        bought_out_at=row.bought_out_at,
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


PAGE = 32  # lots per spender read first: most burns and holds are covered by their earliest few


@per_dialect
def _first_lots_query(dialect: str):
    """Each listed member's first ``page`` lots with free points, in consumption order: the range of
    the member's open lots in ix_lots_member_order walked per member, stopping there."""
    lot = lots_table.c
    if dialect == "postgresql":
        spender = func.unnest(bindparam("ids", type_=VarcharArray())).table_valued("id").render_derived(name="spender")
        # In the index's own order, so the walk stops after the page. Its ids sort by the database's
        # collation, Python's (``consumption_key``) by code point: the same for lot ids, which are all
        # "lot_" and lowercase hex of one length (``new_id``). COLLATE "C" here would make PostgreSQL
        # sort every lot of the member instead (14 ms a burn at 5,000 lots, against 7).
        page = (select(lots_table).where(lot.member_id == spender.c.id, is_open(lot), lot.remaining > lot.reserved)
                .order_by(lot.expires_at, lot.issued_at, lot.id).limit(bindparam("page")).lateral("page"))
        return select(page).select_from(spender).join(page, true())
    # SQLite has no LATERAL; a correlated IN list, run once per member, does the same
    spender = func.json_each(bindparam("ids", type_=String())).table_valued("value").alias("spender")
    first = lots_table.alias("page_lot")
    page = (select(first.c.id).where(first.c.member_id == spender.c.value, is_open(first.c),
                                     first.c.remaining > first.c.reserved)
            .order_by(first.c.expires_at, first.c.issued_at, first.c.id).limit(bindparam("page")))
    return select(lots_table).select_from(spender).join(lots_table, lot.id.in_(page))


def load_spendable(tx: Tx, needs: dict[str, int], now) -> tuple[dict[str, LotState], dict[str, tuple]]:
    """What burns and holds of ``needs`` (member -> points they ask, 0 for none) may take, read
    without walking every open lot of a member with many: first each member's earliest ``PAGE``
    lots with free points; then all of them only for a member whose page is all due (a spend expires
    every due lot first) or does not cover its need. Returns the lots and, for each member whose
    lots were read only in part, the consumption key of the last one read (its horizon: every lot
    with free points up to it is among those read)."""
    lots: dict[str, LotState] = {}
    pages: dict[str, list[LotState]] = {member_id: [] for member_id in needs}
    for row in among_rows(tx, _first_lots_query(tx.dialect), needs, page=PAGE):
        lot = lots[row.id] = _lot(row)
        pages[lot.member_id].append(lot)
    horizons: dict[str, tuple] = {}
    read_all = []
    for member_id, page in pages.items():
        if len(page) < PAGE:
            continue  # that is all its lots with free points
        last = max(page, key=consumption_key)
        if last.expires_at <= now or sum(lot.free for lot in page if lot.expires_at > now) < needs[member_id]:
            read_all.append(member_id)
        else:
            horizons[member_id] = consumption_key(last)
    for lot_id, lot in load_lots(tx, member_ids=read_all).items():
        lots.setdefault(lot_id, lot)
    return lots, horizons


def load_due_lots(tx: Tx, member_ids: Iterable[str], now) -> dict[str, LotState]:
    """The members' lots that are due (``expires_at <= now``) and have free points: what expiry takes."""
    result: dict[str, LotState] = {}
    for chunk in chunks(member_ids):
        query = select(lots_table).where(lots_table.c.member_id.in_(chunk), is_open(lots_table.c),
                                         lots_table.c.expires_at <= now,
                                         lots_table.c.remaining > lots_table.c.reserved)
        for row in tx.session.execute(query):
            result[row.id] = _lot(row)
    return result


def member_lots(lots: dict[str, LotState], member_id: str) -> list[LotState]:
    return [lot for lot in lots.values() if lot.member_id == member_id]


__all__ = ["lock_members", "load_lots", "load_spendable", "load_due_lots", "member_lots", "chunks", "among_rows", "survivors", "or_"]
