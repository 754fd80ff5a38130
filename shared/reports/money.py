"""Money of a period, as settled: net positions from the ``settlements`` table and the statements' rounded sums.

Fees and reimbursements are the per-cycle sums of the partner's obligation lines by
(payer, payee, kind), each rounded once half-even to minor units: exactly the S records of
its statements. Only settled cycles count; the others are listed as unsettled. Only the network's
cycles count, from its first cycle on (``runs.of_the_network``, as ``clearing list`` and the runs
list): a settlement of an earlier day (a typo run by hand before such runs were refused) and an open
``cycles`` row of one (an older merge, erasure or buy-out left it) are in no figure.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

from shared.db.database import Tx
from shared.models import Cycle, ObligationLine, ReportCycleLines, Settlement, SettlementRun
from shared.money import round_micro_to_minor
from shared.reports.period import Period
from shared.reports.split import split, within
from shared.reports.sql import exact_sum, exact_total
from shared.settlement.runs import of_the_network

# (figure, side of the partner, line kinds)
FIGURES = (
    ("fees_paid_minor", "payer", ("issuance_fee", "redemption_fee")),
    ("reimbursements_paid_minor", "payer", ("redemption",)),
    ("prepaid_funding_paid_minor", "payer", ("prepaid_funding",)),
    ("reimbursements_received_minor", "payee", ("redemption",)),
    ("breakage_refunds_received_minor", "payee", ("breakage_refund",)),
)


def cycle_figures(party: str, sums: dict[tuple, int]) -> dict[str, int]:
    """The money figures of one cycle from its rounded sums by (payer, payee, kind), each read as its
    statement's S record reads it, from the party's side (+ received, − paid). A reimbursement is paid or
    received by that sign: a reversal in a later cycle of a burn at the party's till is a line with a
    negative amount to the party, a reimbursement it pays back, as its S record shows. Fees, prepaid
    funding and breakage refunds keep their one direction, net of what reversals refund."""
    figures = {name: 0 for name, _, _ in FIGURES}
    for (payer, payee, kind), amount in sums.items():
        if party not in (payer, payee):
            continue
        signed = amount if payee == party else -amount
        if kind == "redemption":
            figures["reimbursements_received_minor" if signed > 0 else "reimbursements_paid_minor"] += abs(signed)
            continue
        for name, side, kinds in FIGURES:
            if kind in kinds:
                figures[name] += signed if side == "payee" else -signed
    return figures


def statement_sums(tx: Tx, party: str, period: Period, *, rollup: bool = True) -> dict[tuple, int]:
    """(cycle, payer, payee, kind) -> minor units, as the statements of settled cycles show them."""
    parts = split(tx, period, rollup)
    exact: dict[tuple, int] = {}
    if parts.rolled:
        sums = ReportCycleLines
        for cycle, payer, payee, kind, amount in tx.session.execute(
                select(sums.cycle_date, sums.payer, sums.payee, sums.kind, sums.amount_micro)
                .where(within(sums.cycle_date, parts.rolled), of_the_network(sums.cycle_date),
                       or_(sums.payer == party, sums.payee == party))):
            exact[(cycle, payer, payee, kind)] = int(amount)
    if parts.live:
        line = ObligationLine
        settled = select(SettlementRun.cycle_date)
        for cycle, payer, payee, kind, *amount in tx.session.execute(  # exact past 2^63 on the way (SQLite)
                select(line.cycle_date, line.payer, line.payee, line.kind, *exact_sum(tx, line.amount_micro))
                .where(within(line.cycle_date, parts.live), line.cycle_date.in_(settled),
                       of_the_network(line.cycle_date),
                       or_(line.payer == party, line.payee == party))
                .group_by(line.cycle_date, line.payer, line.payee, line.kind)):
            exact[(cycle, payer, payee, kind)] = exact_total(tx, amount)
    return {key: round_micro_to_minor(amount) for key, amount in exact.items()}


def money(tx: Tx, partner_id: str, period: Period, *, rollup: bool = True) -> dict:
    sums = statement_sums(tx, partner_id, period, rollup=rollup)
    cycles = []
    for row in tx.session.execute(select(Settlement).where(
            Settlement.party == partner_id, Settlement.cycle_date >= period.first,
            Settlement.cycle_date <= period.last, of_the_network(Settlement.cycle_date))
            .order_by(Settlement.cycle_date)).scalars():
        figures = cycle_figures(partner_id, {(payer, payee, kind): amount
                                             for (cycle, payer, payee, kind), amount in sums.items()
                                             if cycle == row.cycle_date})
        cycles.append({"cycle_date": row.cycle_date.isoformat(), "net_minor": row.net_minor,
                       **figures, "payment_date": row.payment_date.isoformat(), "status": row.status})
    totals = {name: sum(c[name] for c in cycles) for name in ("net_minor", *(f[0] for f in FIGURES))}
    return {"cycles": cycles, "totals": totals, "unsettled_cycles": unsettled_cycles(tx, period)}


def unsettled_cycles(tx: Tx, period: Period) -> list[str]:
    """Cycles of the period that hold entries but are not settled yet: their money is not in the report
    (from the network's first cycle on: an open row of an earlier day holds none and is never settled)."""
    return [day.isoformat() for day in tx.session.execute(
        select(Cycle.cycle_date).where(Cycle.cycle_date >= period.first, Cycle.cycle_date <= period.last,
                                       Cycle.cycle_date.not_in(select(SettlementRun.cycle_date)),
                                       of_the_network(Cycle.cycle_date))
        .order_by(Cycle.cycle_date)).scalars()]


def net_by_party(tx: Tx, period: Period) -> dict[str, int]:
    return {party: int(net) for party, net in tx.session.execute(
        select(Settlement.party, func.sum(Settlement.net_minor))
        .where(Settlement.cycle_date >= period.first, Settlement.cycle_date <= period.last,
               of_the_network(Settlement.cycle_date))
        .group_by(Settlement.party))}
