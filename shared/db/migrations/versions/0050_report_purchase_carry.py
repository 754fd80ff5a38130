"""report_cycle_earns.purchase_amount_carry: a partner's purchase amounts of a cycle summed exactly

* report_cycle_earns.purchase_amount_carry BIGINT NOT NULL DEFAULT 0: the cycle's purchase amounts of the
  partner are ``purchase_amount_carry`` × 2^62 + ``purchase_amount_minor`` (0 ≤ minor < 2^62). Rows
  written before this revision keep carry 0: their sums fitted a BIGINT.

A partner may give a purchase amount of up to 10^15 minor units with each earn (and explicit points, 1
say), so 9,224 earns in one cycle summed past a BIGINT: the roll-up, written in the settlement's unit of
work, failed with the database's overflow, and the cycle — every partner's settlement — could never be
settled.

Revision ID: 0050
Revises: 0049
Create Date: 2026-12-12 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy import text

from shared.db.migrate import MigrationStopped


revision = '0050'
down_revision = '0049'
branch_labels = None
depends_on = None


class CarriedPurchaseSums(MigrationStopped):
    """One line from `pointsnet db downgrade` (exit 2), nothing changed."""


def upgrade() -> None:
    # NOT NULL with a default: SQLite adds such a column in place, without rebuilding the table
    op.add_column('report_cycle_earns', sa.Column('purchase_amount_carry', sa.BigInteger(), nullable=False,
                                                  server_default='0'))


def downgrade() -> None:
    connection = op.get_bind()
    # a carry of 1 is 2^62 + minor, below 2^63: the older form holds it, folded into minor
    carried = connection.execute(text(
        "SELECT DISTINCT cycle_date FROM report_cycle_earns WHERE purchase_amount_carry > 1 ORDER BY 1")).scalars().all()
    if carried:  # the older form cannot hold these sums: going back would report them wrong
        raise CarriedPurchaseSums(
            f"migration 0050 stopped, nothing changed: the report roll-ups of {len(carried)} cycle(s) "
            f"({', '.join(str(day) for day in carried[:5])}{', …' if len(carried) > 5 else ''}) hold purchase "
            f"amounts summing past 2^63 - 1 minor units, which the release before 0050 cannot hold")
    connection.execute(text("UPDATE report_cycle_earns SET purchase_amount_minor = purchase_amount_minor + "
                            "4611686018427387904, purchase_amount_carry = 0 WHERE purchase_amount_carry = 1"))
    op.execute("ALTER TABLE report_cycle_earns DROP COLUMN purchase_amount_carry")
