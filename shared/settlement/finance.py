"""Finance controls: recording payments against settlements, and what is overdue.

What a payment moves is the settlement's by-bank amount, ``net_minor + from_float_minor``: the part of
a partner's net settled from its prepaid float (``from_float_minor``, fixed at settlement) is not paid
by bank. A settlement is ``due`` only when that amount is not 0; its sign says who pays.

Both see the network's settlements only, from its first cycle on (``runs.of_the_network``), as
``clearing list`` and the runs list: a settlement of an earlier day (a typo run by hand before such
runs were refused) is never overdue, and recording a payment against it is refused as for a cycle
that was never settled.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import case, select, update

from shared.db.database import Tx
from shared.clock import as_utc
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import Settlement, SettlementRun
from shared.settlement.runs import UnknownCycle, of_the_network


class NothingDue(NotFound):
    code, title = "nothing_due", "No settlement is due for this party and cycle"


class AlreadyRecorded(Conflict):
    code, title = "already_recorded", "This settlement's payment is already recorded"


def record_payment(tx: Tx, cycle: date, party: str, bank_reference: str) -> dict:
    """Move a party's settlement from due to paid (it pays by bank) or received (it is paid by bank),
    with the bank's reference. The direction is the by-bank amount's, not the net's: a prepaid partner
    whose float settles more than its net owes is paid the difference. A cycle not settled, or one
    before the network's first cycle (``of_the_network``), is refused as ``unknown_cycle``, as the
    dashboard's run pages refuse it. A settlement whose payment is recorded already (``paid`` or
    ``received``) is refused as ``already_recorded``, naming its status, when and its bank reference
    (the first recording stands); ``nothing_due`` is for a party with nothing to pay by bank (or no
    settlement) in the cycle."""
    if not bank_reference.strip():
        raise ValidationFailed("a bank reference is required")
    if tx.session.execute(select(SettlementRun.cycle_date).where(
            SettlementRun.cycle_date == cycle, of_the_network(SettlementRun.cycle_date))).first() is None:
        raise UnknownCycle(f"cycle {cycle.isoformat()} has not been settled")
    # One conditional UPDATE: of two recordings at once, the second finds nothing due (on PostgreSQL
    # it waits for the first's row lock, then re-reads the status) instead of overwriting the first.
    done = tx.session.execute(
        update(Settlement).where(Settlement.cycle_date == cycle, Settlement.party == party, Settlement.status == "due",
                                 of_the_network(Settlement.cycle_date))
        .values(status=case((Settlement.by_bank_minor < 0, "paid"), else_="received"),
                bank_reference=bank_reference.strip(), recorded_at=tx.now))
    if done.rowcount != 1:
        refuse_recorded(tx, cycle, party)
        raise NothingDue(f"no settlement due for {party} in cycle {cycle.isoformat()}")
    row = tx.session.execute(select(Settlement).where(
        Settlement.cycle_date == cycle, Settlement.party == party)).scalar_one()
    return {"cycle_date": cycle.isoformat(), "party": party, "net_minor": row.net_minor,
            "from_float_minor": row.from_float_minor, "by_bank_minor": row.by_bank_minor, "status": row.status,
            "bank_reference": bank_reference.strip()}


def refuse_recorded(tx: Tx, cycle: date, party: str) -> None:
    """Raise AlreadyRecorded when the party's settlement of the cycle is paid or received already."""
    row = tx.session.execute(select(Settlement.status, Settlement.recorded_at, Settlement.bank_reference).where(
        Settlement.cycle_date == cycle, Settlement.party == party, Settlement.status.in_(("paid", "received")),
        of_the_network(Settlement.cycle_date))).first()
    if row is None:
        return
    when = as_utc(row.recorded_at).isoformat().replace("+00:00", "Z") if row.recorded_at else None
    raise AlreadyRecorded(f"the settlement of {party} in cycle {cycle.isoformat()} is already {row.status}: "
                          f"recorded {when or 'at an unknown time'} with bank reference {row.bank_reference}",
                          status=row.status, recorded_at=when, bank_reference=row.bank_reference)


def overdue(tx: Tx, today: date) -> list[dict]:
    """Settlements still due (each has a by-bank amount that is not 0) past their payment date, from the
    network's first cycle on (``of_the_network``)."""
    rows = tx.session.execute(select(Settlement).where(Settlement.status == "due", Settlement.payment_date < today,
                                                       of_the_network(Settlement.cycle_date))
                              .order_by(Settlement.payment_date, Settlement.party)).scalars().all()
    return [{"cycle_date": r.cycle_date.isoformat(), "party": r.party, "net_minor": r.net_minor,
             "from_float_minor": r.from_float_minor, "by_bank_minor": r.by_bank_minor,
             "payment_date": r.payment_date.isoformat()} for r in rows]
