"""settlements.float_rounding_micro: what a settlement credited a prepaid float for rounding

* settlements.float_rounding_micro BIGINT NOT NULL DEFAULT 0;
* settled rows of a partner whose float is enforced now, and whose settlement took funding from the
  float (from_float_minor not 0) or credited it with what the float did not hold (a top-up
  ``settlement:<cycle>``), get it as settlement now books it: the cycle's exact prepaid_funding sum
  less that sum rounded once, half-even, to minor units (as on the statement).

A statement settles a cycle's prepaid funding rounded once to minor units, but the float was drawn
the exact (micro-unit) amount: each cycle's half-fen of rounding stayed in the float with no record,
so top-ups less the statements' *from float* no longer equalled the float's balance (nor its headroom,
nor what a leaving partner is returned). Settlement now credits the float with the difference
(docs/ledger.md, decision 14), so after settlement the float gave exactly the statements' figures.

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-08 10:00:00.000000
"""
from decimal import ROUND_HALF_EVEN, Decimal

from alembic import op
import sqlalchemy as sa
from sqlalchemy import text


revision = '0044'
down_revision = '0043'
branch_labels = None
depends_on = None


def _round_micro_to_minor(micro: int) -> int:
    """As shared.money.round_micro_to_minor at this revision: once, half-even, to whole minor units."""
    return int((Decimal(micro) / 1_000_000).to_integral_value(rounding=ROUND_HALF_EVEN))


def upgrade() -> None:
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('float_rounding_micro', sa.BigInteger(), server_default='0', nullable=False))
    bind = op.get_bind()
    # settled cycles of partners whose float is enforced (few): ix_obligation_lines_prepaid_funding
    funded = bind.execute(text("""
        SELECT o.cycle_date, o.payer, SUM(o.amount_micro) FROM obligation_lines o
        WHERE o.kind = 'prepaid_funding'
          AND o.payer IN (SELECT partner_id FROM partner_limits WHERE float_overdraft_minor IS NOT NULL)
          AND EXISTS (SELECT 1 FROM settlements s WHERE s.cycle_date = o.cycle_date AND s.party = o.payer
                      AND s.from_float_minor <> 0)
        GROUP BY o.cycle_date, o.payer""")).all()
    credited = {(str(reference)[len("settlement:"):], partner) for partner, reference in bind.execute(text(
        "SELECT partner_id, bank_reference FROM float_topups WHERE bank_reference LIKE 'settlement:%'")).all()}
    more = bind.execute(text("""
        SELECT o.cycle_date, o.payer, SUM(o.amount_micro) FROM obligation_lines o
        WHERE o.kind = 'prepaid_funding'
          AND o.payer IN (SELECT partner_id FROM partner_limits WHERE float_overdraft_minor IS NOT NULL)
          AND EXISTS (SELECT 1 FROM settlements s WHERE s.cycle_date = o.cycle_date AND s.party = o.payer
                      AND s.from_float_minor = 0)
        GROUP BY o.cycle_date, o.payer""")).all() if credited else []
    update = text("UPDATE settlements SET float_rounding_micro = :amount WHERE cycle_date = :cycle AND party = :party")
    for cycle, payer, total in list(funded) + [row for row in more if (str(row[0])[:10], row[1]) in credited]:
        rounding = int(total) - _round_micro_to_minor(int(total)) * 1_000_000
        if rounding:
            bind.execute(update, {"amount": rounding, "cycle": cycle, "party": payer})


def downgrade() -> None:
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_column('float_rounding_micro')
