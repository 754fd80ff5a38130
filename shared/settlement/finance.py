"""Finance controls: recording payments against settlements, and what is overdue.

What a payment moves is the settlement's by-bank amount, ``net_minor + from_float_minor``: the part of
a partner's net settled from its prepaid float (``from_float_minor``, fixed at settlement) is not paid
by bank. A settlement is ``due`` only when that amount is not 0; its sign says who pays.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import case, select, update

from shared.db.database import Tx
from shared.errors import NotFound, ValidationFailed
from shared.models import Settlement


class NothingDue(NotFound):
    code, title = "nothing_due", "No settlement is due for this party and cycle"


def record_payment(tx: Tx, cycle: date, party: str, bank_reference: str) -> dict:
    """Move a party's settlement from due to paid (it pays by bank) or received (it is paid by bank),
    with the bank's reference. The direction is the by-bank amount's, not the net's: a prepaid partner
    whose float settles more than its net owes is paid the difference."""
    if not bank_reference.strip():
        raise ValidationFailed("a bank reference is required")
    # One conditional UPDATE: of two recordings at once, the second finds nothing due (on PostgreSQL
    # it waits for the first's row lock, then re-reads the status) instead of overwriting the first.
    done = tx.session.execute(
        update(Settlement).where(Settlement.cycle_date == cycle, Settlement.party == party, Settlement.status == "due")
        .values(status=case((Settlement.by_bank_minor < 0, "paid"), else_="received"),
                bank_reference=bank_reference.strip(), recorded_at=tx.now))
    if done.rowcount != 1:
        raise NothingDue(f"no settlement due for {party} in cycle {cycle.isoformat()}")
    row = tx.session.execute(select(Settlement).where(
        Settlement.cycle_date == cycle, Settlement.party == party)).scalar_one()
    return {"cycle_date": cycle.isoformat(), "party": party, "net_minor": row.net_minor,
            "from_float_minor": row.from_float_minor, "by_bank_minor": row.by_bank_minor, "status": row.status,
            "bank_reference": bank_reference.strip()}


def overdue(tx: Tx, today: date) -> list[dict]:
    """Settlements still due (each has a by-bank amount that is not 0) past their payment date."""
    rows = tx.session.execute(select(Settlement).where(Settlement.status == "due", Settlement.payment_date < today)
                              .order_by(Settlement.payment_date, Settlement.party)).scalars().all()
    return [{"cycle_date": r.cycle_date.isoformat(), "party": r.party, "net_minor": r.net_minor,
             "from_float_minor": r.from_float_minor, "by_bank_minor": r.by_bank_minor,
             "payment_date": r.payment_date.isoformat()} for r in rows]
