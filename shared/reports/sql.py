"""The few expressions that differ between SQLite and PostgreSQL, and shared SQL pieces of the reports."""

from __future__ import annotations

from sqlalchemy import BigInteger, and_, case, cast, func, literal_column
from sqlalchemy.dialects.postgresql import JSON

from shared.db.database import Tx
from shared.models import Entry

NETWORK = "network"  # the funder or party of what no partner funded or did
REDEMPTION_KINDS = ("burn", "capture")
TRANSACTION_KINDS = ("earn", "burn", "capture")  # what counts as a member transacting at a partner
ADJUSTED_OUT = "adjusted_out"  # the consumption category of an operator's debit adjustment
# Roll-ups written before ``adjusted_out`` existed hold debit adjustments as ``other``: then as now, no
# other lot consumption fell outside the named categories (burn, capture, reversal, expiry, adjustment
# are the only entries that consume lots; tests/reports/test_adjustments.py keeps the list).
LEGACY_CATEGORIES = {"other": ADJUSTED_OUT}


_HALF = 2**32  # SQLite: a 64-bit value as its high and low halves, each summed without overflow


def exact_sum(tx: Tx, column) -> list:
    """``SUM(column)`` of 64-bit integers (money in micro-units), exact however large the running sum
    grows: one or two select columns, which ``exact_total`` makes one int again.

    PostgreSQL sums a bigint as a numeric (exact, unbounded). SQLite's integer ``SUM`` fails with
    "integer overflow" as soon as its running sum passes 2^63, even when the total fits (lines that
    each fit, a reversal later), and ``TOTAL()`` is a float, never for money: there it is two sums, of
    the value divided by 2^32 (truncated) and of the remainder (the sign of the value), which cannot
    overflow below 2^31 rows, put together exactly in Python."""
    if tx.is_postgres:
        return [func.sum(column)]
    return [func.sum(column.op("/")(_HALF)), func.sum(column.op("%")(_HALF))]


# report_cycle_earns keeps a cycle's purchase amounts as carry × CARRY + minor (0 <= minor < CARRY)
CARRY = 2 ** 62


def exact_total(tx: Tx, figures) -> int | None:
    """The int of ``exact_sum``'s columns of one row (None for the sum of no row)."""
    if tx.is_postgres:
        return None if figures[0] is None else int(figures[0])
    high, low = figures
    return None if high is None else int(high) * _HALF + int(low)


def const(text: str):
    """A string constant rendered inline, so GROUP BY sees the very same expression on PostgreSQL."""
    return literal_column("'" + text.replace("'", "''") + "'")


def purchase_amount(tx: Tx, entry=Entry):
    """The purchase amount (minor units) of an earn: ``amount`` in its canonical request JSON, or NULL.

    Entries keep the partner's request as canonical JSON and have no amount column; reading it
    with the database's JSON functions keeps the aggregation in SQL.
    """
    if tx.is_postgres:
        return cast(cast(entry.request, JSON)["amount"].astext, BigInteger)
    return func.json_extract(entry.request, "$.amount")


def movement_category(entry, original):
    """What a lot consumption of ``entry`` is: redeemed, issue_reversed (an earn taken back), expired or
    adjusted_out (an operator's debit adjustment; a credit adjustment makes a lot and consumes none).

    Burns and captures take points (positive); reversals of them give points back (negative, still
    "redeemed", so sums are net); a reversal of an earn takes points back from its own lots.
    """
    return case(
        (entry.kind.in_(REDEMPTION_KINDS), const("redeemed")),
        (and_(entry.kind == "reversal", original.kind.in_(REDEMPTION_KINDS)), const("redeemed")),
        (entry.kind == "reversal", const("issue_reversed")),
        (entry.kind == "expiry", const("expired")),
        (entry.kind == "adjustment", const(ADJUSTED_OUT)),
        else_=const("other"),
    )

