"""lots: a member's open lots first in its order index

* ix_lots_member_order on lots becomes (member_id, (remaining > 0), expires_at, issued_at, id).

A burn or hold reads the spender's first lots with free points in consumption order, and expiry,
erasure and the hold job read all of a member's open lots. Through (member_id, expires_at,
issued_at, id) each walked every lot the member ever had, spent ones first (they expire first): a
burn of a member with 20,000 spent lots and 40 open ones took 15 ms on PostgreSQL and 8.7 ms on
SQLite. With whether the lot is open as the second column, its open lots are one range in
consumption order, and the index still serves every read of all of a member's lots. A separate
partial index of open lots did the same but cost the batch post 8 % on SQLite (an index more to
write); this one replaces the old.

The index is rebuilt with a plain CREATE INDEX, which holds writes to lots until it is built.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 14:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_lots_member_order', table_name='lots')
    op.create_index('ix_lots_member_order', 'lots',
                    ['member_id', sa.text('(remaining > 0)'), 'expires_at', 'issued_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_lots_member_order', table_name='lots')
    op.create_index('ix_lots_member_order', 'lots', ['member_id', 'expires_at', 'issued_at', 'id'], unique=False)
