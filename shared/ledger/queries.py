"""Read side of the ledger: balances, lots, account balances as sums of postings."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from shared.db.database import Tx
from shared.errors import UnknownMember
from shared.ledger.rules import party
from shared.models import Lot, Member, Transfer

transfers_t, lots_t, members_t = Transfer.__table__, Lot.__table__, Member.__table__


def account_balance(tx: Tx, account: str) -> int:
    """Credits minus debits: the balance of any account, summed from its postings on read."""
    credits = tx.session.execute(select(func.coalesce(func.sum(transfers_t.c.points), 0))
                                 .where(transfers_t.c.credit_account == account)).scalar_one()
    debits = tx.session.execute(select(func.coalesce(func.sum(transfers_t.c.points), 0))
                                .where(transfers_t.c.debit_account == account)).scalar_one()
    return int(credits) - int(debits)


def member_balance(tx: Tx, member_id: str, *, expiring_within_days: int = 30) -> dict:
    row = tx.session.execute(select(members_t.c.available, members_t.c.held, members_t.c.status)
                             .where(members_t.c.id == member_id)).first()
    if row is None or row.status != "active":
        raise UnknownMember(f"no member {member_id}")
    horizon = tx.now + timedelta(days=expiring_within_days)
    lots = tx.session.execute(
        select(lots_t).where(lots_t.c.member_id == member_id, lots_t.c.remaining > 0)
        .order_by(lots_t.c.expires_at, lots_t.c.issued_at, lots_t.c.id)).all()
    expiring = [{"points": lot.remaining - lot.reserved, "expires_at": lot.expires_at.isoformat()}
                for lot in lots if lot.expires_at <= horizon and lot.remaining > lot.reserved]
    return {
        "member_id": member_id, "available": row.available, "held": row.held,
        "expiring_soon": expiring,
        "lots": [{"lot_id": lot.id, "remaining": lot.remaining, "reserved": lot.reserved,
                  "expires_at": lot.expires_at.isoformat(), "funded_by": party(lot.funder_partner_id)}
                 for lot in lots],
    }
