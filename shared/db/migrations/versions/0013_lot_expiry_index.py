"""expiry and settlement at scale: open lots by expiry; a cycle's lines by payee

* lots: the expiry index holds open lots only (remaining > 0).

The expiry job looks for due lots in expiry order; with every lot in the index it walked
past every lot ever spent or expired on each batch (quadratic in a run, and growing with
the ledger's history). A partial index keeps only lots with points left.

* obligation_lines (cycle_date, payee): a partner's statement reads the cycle's lines it pays
  (ix_obligation_lines_cycle) or receives; without this index every statement of a cycle scanned
  all of the cycle's lines (quadratic in the number of partners).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 07:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_index('ix_lots_expires')
        batch_op.create_index('ix_lots_open_expires', ['expires_at'], unique=False,
                              sqlite_where=sa.text('remaining > 0'), postgresql_where=sa.text('remaining > 0'))
    with op.batch_alter_table('obligation_lines', schema=None) as batch_op:
        batch_op.create_index('ix_obligation_lines_cycle_payee', ['cycle_date', 'payee'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('obligation_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_obligation_lines_cycle_payee')
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_index('ix_lots_open_expires', sqlite_where=sa.text('remaining > 0'),
                            postgresql_where=sa.text('remaining > 0'))
        batch_op.create_index('ix_lots_expires', ['expires_at'], unique=False)
