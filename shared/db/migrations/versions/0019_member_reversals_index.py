"""entries: a member's reversals, indexed alone

* ix_entries_member_reversals on entries (member_id, posted_at) WHERE kind = 'reversal'.

A tier's qualifying points are the member's earns in the window less what reversals of those
earns took back. Each earn reads them again under the member's lock. Finding the reversals read
the member's every entry in the window a second time (through the (member, posted_at) index, then
the rows, to test their kind): 11.7 ms of a 1,000-event batch once members had 20 entries each,
and growing with their history. Reversals are rare, so the partial index is small and costs almost
nothing to write.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 16:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

REVERSALS = sa.text("kind = 'reversal'")


def upgrade() -> None:
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index('ix_entries_member_reversals', ['member_id', 'posted_at'], unique=False,
                              sqlite_where=REVERSALS, postgresql_where=REVERSALS)


def downgrade() -> None:
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index('ix_entries_member_reversals', sqlite_where=REVERSALS, postgresql_where=REVERSALS)
