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

from datetime import date, datetime

from sqlalchemy import case, func, select, update

from shared.db.database import Tx
from shared.clock import as_utc
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import Settlement, SettlementPayment, SettlementRun
from shared.settlement.runs import UnknownCycle, of_the_network

MAX_REFERENCE = 128  # settlements.bank_reference and settlement_payments.bank_reference


class NothingDue(NotFound):
    code, title = "nothing_due", "No settlement is due for this party and cycle"


class AlreadyRecorded(Conflict):
    code, title = "already_recorded", "This settlement's payment is already recorded"


class AmountExceedsDue(Conflict):
    code, title = "amount_exceeds_due", "The amount is more than what is outstanding of the settlement"


def record_payment(tx: Tx, cycle: date, party: str, bank_reference: str, amount_minor: int | None = None) -> dict:
    """Record a bank transfer against a party's settlement, with the bank's reference and its amount in
    minor units (None: the whole amount outstanding). The settlement moves from due to paid (it pays by
    bank) or received (it is paid by bank) when its payments add up to its by-bank amount (its sign
    aside), with the completing payment's reference and time; until then it stays ``due``, the rest
    outstanding. The direction is the by-bank amount's, not the net's: a prepaid partner whose float
    settles more than its net owes is paid the difference. The answer carries this payment's amount
    (``amount_minor``), what is paid so far with it (``paid_minor``) and what is outstanding after it.

    Refused: an amount of 0 or less (``validation_failed``); more than what is outstanding
    (``amount_exceeds_due``, naming it); a bank reference recorded already for the settlement, or a
    settlement paid or received already (``already_recorded``, naming when and the reference: the first
    recording stands); a cycle not settled, or one before the network's first cycle
    (``of_the_network``), as ``unknown_cycle``, as the dashboard's run pages refuse it; a party with
    nothing to pay by bank (or no settlement) in the cycle as ``nothing_due``.

    The settlement's row is read FOR UPDATE (PostgreSQL: a second recording at once waits for the
    first to commit, then reads its payments; SQLite has one writer), and completing it is one
    conditional UPDATE of a row still due, so two recordings at once never record more than is due."""
    row, reference, amount, paid, due = payable(tx, cycle, party, bank_reference, amount_minor, lock=True)
    tx.session.add(SettlementPayment(cycle_date=cycle, party=party, amount_minor=amount, bank_reference=reference,
                                     recorded_at=tx.now))
    tx.session.flush()
    paid += amount
    if paid == due:
        # One conditional UPDATE: the row is still due (its lock is held; without it, of two recordings at
        # once the second would find nothing due rather than overwrite the first).
        done = tx.session.execute(
            update(Settlement).where(Settlement.cycle_date == cycle, Settlement.party == party,
                                     Settlement.status == "due")
            .values(status=case((Settlement.by_bank_minor < 0, "paid"), else_="received"),
                    bank_reference=reference, recorded_at=tx.now).execution_options(synchronize_session=False))
        if done.rowcount != 1:
            refuse_recorded(tx, cycle, party)
            raise NothingDue(f"no settlement due for {party} in cycle {cycle.isoformat()}")
        tx.session.refresh(row)
    return {"cycle_date": cycle.isoformat(), "party": party, "net_minor": row.net_minor,
            "from_float_minor": row.from_float_minor, "by_bank_minor": row.by_bank_minor, "status": row.status,
            "bank_reference": reference, "amount_minor": amount, "paid_minor": paid, "outstanding_minor": due - paid}


def payable(tx: Tx, cycle: date, party: str, bank_reference: str, amount_minor: int | None, *,
            lock: bool) -> tuple[Settlement, str, int, int, int]:
    """What ``record_payment`` checks before it records anything: (the settlement, the bank reference
    stripped, the amount to record, what was paid so far, its by-bank amount's size), or the refusal.
    ``lock``: read the settlement's row FOR UPDATE (``record_payment``); the dashboard checks a request
    without it when it is filed, and again under it when it is approved."""
    reference = bank_reference.strip()
    if not reference:
        raise ValidationFailed("a bank reference is required")
    if len(reference) > MAX_REFERENCE:
        raise ValidationFailed(f"a bank reference is at most {MAX_REFERENCE} characters")
    if amount_minor is not None and (isinstance(amount_minor, bool) or not isinstance(amount_minor, int)
                                     or amount_minor <= 0):
        raise ValidationFailed(f"the amount of a payment is a whole number of minor units above 0, not {amount_minor}")
    if tx.session.execute(select(SettlementRun.cycle_date).where(
            SettlementRun.cycle_date == cycle, of_the_network(SettlementRun.cycle_date))).first() is None:
        raise UnknownCycle(f"cycle {cycle.isoformat()} has not been settled")
    query = select(Settlement).where(Settlement.cycle_date == cycle, Settlement.party == party,
                                     of_the_network(Settlement.cycle_date))
    # populate_existing: the row as read now (as locked), not as this session may have read it before
    row = tx.session.execute((query.with_for_update() if lock else query)
                             .execution_options(populate_existing=True)).scalar_one_or_none()
    if row is None or row.status != "due":
        refuse_recorded(tx, cycle, party)
        raise NothingDue(f"no settlement due for {party} in cycle {cycle.isoformat()}")
    payments = paid_so_far(tx, cycle, party)
    if reference in payments:
        amount, when = payments[reference]
        raise AlreadyRecorded(f"a payment of {amount} (minor units) with bank reference {reference} is already "
                              f"recorded for the settlement of {party} in cycle {cycle.isoformat()}: recorded "
                              f"{_instant(when) or 'at an unknown time'}",
                              status=row.status, recorded_at=_instant(when), bank_reference=reference)
    due = abs(row.by_bank_minor)
    paid = sum(amount for amount, _when in payments.values())
    outstanding = due - paid
    if outstanding <= 0:  # never for a settlement still due (its last payment completes it); as nothing due
        raise NothingDue(f"no settlement due for {party} in cycle {cycle.isoformat()}")
    amount = outstanding if amount_minor is None else amount_minor
    if amount > outstanding:
        raise AmountExceedsDue(
            f"the settlement of {party} in cycle {cycle.isoformat()} has {outstanding} outstanding (minor units; "
            f"{paid} of {due} recorded): a payment of {amount} is more than that",
            outstanding_minor=outstanding, paid_minor=paid, due_minor=due)
    return row, reference, amount, paid, due


def paid_so_far(tx: Tx, cycle: date, party: str) -> dict[str, tuple[int, datetime | None]]:
    """bank reference -> (amount in minor units, when recorded) of the payments recorded for a settlement."""
    return {reference: (int(amount), when) for reference, amount, when in tx.session.execute(
        select(SettlementPayment.bank_reference, SettlementPayment.amount_minor, SettlementPayment.recorded_at)
        .where(SettlementPayment.cycle_date == cycle, SettlementPayment.party == party))}


def paid_sums(tx: Tx, *where) -> dict[tuple[date, str], int]:
    """(cycle, party) -> the sum of the payments recorded so far for each settlement still due that
    ``where`` (conditions on Settlement) selects; one without a payment is left out."""
    found = tx.session.execute(
        select(SettlementPayment.cycle_date, SettlementPayment.party, func.sum(SettlementPayment.amount_minor))
        .join(Settlement, (Settlement.cycle_date == SettlementPayment.cycle_date)
              & (Settlement.party == SettlementPayment.party))
        .where(Settlement.status == "due", *where)
        .group_by(SettlementPayment.cycle_date, SettlementPayment.party))
    return {(cycle, party): int(total) for cycle, party, total in found}


def amounts(status: str, by_bank_minor: int, paid: int) -> dict:
    """What a settlement shows as paid so far and outstanding: a due one its payments and the rest; one
    paid or received all of its by-bank amount (also one recorded before payments were kept one by one)
    and nothing; one with nothing due nothing of either."""
    due = abs(by_bank_minor)
    if status == "due":
        return {"paid_minor": paid, "outstanding_minor": due - paid}
    if status in ("paid", "received"):
        return {"paid_minor": due, "outstanding_minor": 0}
    return {"paid_minor": 0, "outstanding_minor": 0}


def _instant(when: datetime | None) -> str | None:
    return as_utc(when).isoformat().replace("+00:00", "Z") if when else None


def refuse_recorded(tx: Tx, cycle: date, party: str) -> None:
    """Raise AlreadyRecorded when the party's settlement of the cycle is paid or received already."""
    row = tx.session.execute(select(Settlement.status, Settlement.recorded_at, Settlement.bank_reference).where(
        Settlement.cycle_date == cycle, Settlement.party == party, Settlement.status.in_(("paid", "received")),
        of_the_network(Settlement.cycle_date))).first()
    if row is None:
        return
    when = _instant(row.recorded_at)
    raise AlreadyRecorded(f"the settlement of {party} in cycle {cycle.isoformat()} is already {row.status}: "
                          f"recorded {when or 'at an unknown time'} with bank reference {row.bank_reference}",
                          status=row.status, recorded_at=when, bank_reference=row.bank_reference)


def overdue(tx: Tx, today: date) -> list[dict]:
    """Settlements still due (each has a by-bank amount that is not 0) past their payment date, from the
    network's first cycle on (``of_the_network``), with what was paid so far (``paid_minor``, partly paid)
    and what is outstanding (``outstanding_minor``)."""
    rows = tx.session.execute(select(Settlement).where(Settlement.status == "due", Settlement.payment_date < today,
                                                       of_the_network(Settlement.cycle_date))
                              .order_by(Settlement.payment_date, Settlement.party)).scalars().all()
    paid = paid_sums(tx, Settlement.payment_date < today, of_the_network(Settlement.cycle_date))
    return [{"cycle_date": r.cycle_date.isoformat(), "party": r.party, "net_minor": r.net_minor,
             "from_float_minor": r.from_float_minor, "by_bank_minor": r.by_bank_minor,
             "payment_date": r.payment_date.isoformat()}
            | amounts(r.status, r.by_bank_minor, paid.get((r.cycle_date, r.party), 0)) for r in rows]
