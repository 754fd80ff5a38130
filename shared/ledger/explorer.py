"""The transaction explorer: ledger entries filtered by partner, member, kind, cycles and reference, a
page at a time in SQL, and one entry with everything it wrote (postings, lot consumptions, obligation lines).

Entries are listed newest first by id (ids are sortable by creation time, and the primary key's index
serves the order without a sort).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from shared.db.database import Tx
from shared.errors import NotFound
from shared.models import Entry, Lot, LotConsumption, ObligationLine, Transfer
from shared.models.ledger import ENTRY_KINDS

COUNT_AHEAD = 10_000  # matches counted past a page's start ("10,000 or more")
DETAIL_ROWS = 1000  # an entry's postings, consumptions or lines shown at most (a burn may touch many lots)


class UnknownEntry(NotFound):
    code, title = "transaction_not_found", "No such transaction"


@dataclass(frozen=True)
class EntryFilter:
    partner_id: str | None = None
    member_id: str | None = None
    kind: str | None = None
    first: date | None = None  # first cycle, included
    last: date | None = None  # last cycle, included
    reference: str | None = None

    def conditions(self) -> list:
        where = []
        if self.partner_id:
            where.append(Entry.partner_id == self.partner_id)
        if self.member_id:
            where.append(Entry.member_id == self.member_id)
        if self.kind:
            if self.kind not in ENTRY_KINDS:
                where.append(Entry.kind.is_(None))  # an unknown kind matches nothing
            else:
                where.append(Entry.kind == self.kind)
        if self.first:
            where.append(Entry.cycle_date >= self.first)
        if self.last:
            where.append(Entry.cycle_date <= self.last)
        if self.reference:
            where.append(Entry.reference == self.reference)
        return where


def entries_page(tx: Tx, where: EntryFilter, *, offset: int = 0, limit: int = 50,
                 count_up_to: int = COUNT_AHEAD) -> tuple[list[dict], int, bool]:
    """One page of entries matching the filter (newest first), how many match, and whether that count
    stopped short: matches are counted only up to ``count_up_to`` past the page's start, so a page of
    a large unfiltered ledger costs what its rows cost, not a scan of every entry."""
    conditions = where.conditions()
    rows = tx.session.execute(
        select(Entry.id, Entry.kind, Entry.partner_id, Entry.member_id, Entry.reference, Entry.points,
               Entry.cycle_date, Entry.posted_at, Entry.original_entry_id)
        .where(*conditions).order_by(Entry.id.desc()).offset(offset).limit(limit)).all()
    bound = offset + max(count_up_to, limit)
    counted = int(tx.session.scalar(select(func.count()).select_from(
        select(Entry.id).where(*conditions).limit(bound).subquery())) or 0)
    return [dict(row._mapping) for row in rows], counted, counted >= bound


def entry_detail(tx: Tx, entry_id: str) -> dict:
    """An entry with its postings, lot consumptions and obligation lines (each at most DETAIL_ROWS)."""
    entry = tx.session.get(Entry, entry_id)
    if entry is None:
        raise UnknownEntry(f"no transaction {entry_id}")
    transfers = tx.session.execute(
        select(Transfer.id, Transfer.debit_account, Transfer.credit_account, Transfer.points)
        .where(Transfer.entry_id == entry_id).order_by(Transfer.id).limit(DETAIL_ROWS)).all()
    consumptions = tx.session.execute(
        select(LotConsumption.seq, LotConsumption.lot_id, LotConsumption.points, Lot.funder_partner_id,
               Lot.billing, Lot.expires_at)
        .join(Lot, Lot.id == LotConsumption.lot_id)
        .where(LotConsumption.entry_id == entry_id).order_by(LotConsumption.seq).limit(DETAIL_ROWS)).all()
    lines = tx.session.execute(
        select(ObligationLine.id, ObligationLine.payer, ObligationLine.payee, ObligationLine.kind,
               ObligationLine.points, ObligationLine.amount_micro, ObligationLine.cycle_date,
               ObligationLine.original_line_id)
        .where(ObligationLine.entry_id == entry_id).order_by(ObligationLine.id).limit(DETAIL_ROWS)).all()
    lots = tx.session.execute(select(Lot.id, Lot.points, Lot.remaining, Lot.funder_partner_id, Lot.billing,
                                     Lot.expires_at).where(Lot.entry_id == entry_id).order_by(Lot.id)
                              .limit(DETAIL_ROWS)).all()
    reversals = tx.session.execute(select(Entry.id, Entry.kind, Entry.points).where(
        Entry.original_entry_id == entry_id).order_by(Entry.id).limit(DETAIL_ROWS)).all()
    return {
        "entry": {"id": entry.id, "kind": entry.kind, "partner_id": entry.partner_id, "member_id": entry.member_id,
                  "reference": entry.reference, "points": entry.points, "cycle_date": entry.cycle_date,
                  "posted_at": entry.posted_at, "occurred_at": entry.occurred_at,
                  "original_entry_id": entry.original_entry_id, "hold_id": entry.hold_id},
        "transfers": [dict(r._mapping) for r in transfers],
        "consumptions": [dict(r._mapping) for r in consumptions],
        "lines": [dict(r._mapping) for r in lines],
        "lots": [dict(r._mapping) for r in lots],
        "reversals": [dict(r._mapping) for r in reversals],
        "limit": DETAIL_ROWS,
    }
