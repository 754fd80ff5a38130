"""liability at scale: a partner's open lots by expiry, with their points left

* lots (funder_partner_id, expires_at) INCLUDE (remaining, bought_out_at) WHERE remaining > 0.

Liability (a report's outstanding points with their expiry schedule) sums the points left in a
funder's open lots. Without an index on the funder it read the whole lots table, so it grew with
the ledger's history rather than with the partner's open lots. The partial index holds only lots
with points left, ordered by funder and expiry, and on PostgreSQL carries the two other columns
the query reads, so it is answered from the index alone (an index-only scan).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 05:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.create_index('ix_lots_open_funder', ['funder_partner_id', 'expires_at'], unique=False,
                              postgresql_include=['remaining', 'bought_out_at'],
                              sqlite_where=sa.text('remaining > 0'), postgresql_where=sa.text('remaining > 0'))


def downgrade() -> None:
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_index('ix_lots_open_funder', sqlite_where=sa.text('remaining > 0'),
                            postgresql_where=sa.text('remaining > 0'))
