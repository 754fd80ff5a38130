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

