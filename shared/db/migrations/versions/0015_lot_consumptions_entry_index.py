"""lot consumptions: drop the index on entry_id alone

``uq_lot_consumptions_entry_seq`` is a unique index on (entry_id, seq): entry_id is its leading
column, so it serves every lookup of an entry's consumptions (and returns them in seq order).
The separate index on entry_id only cost an index entry more for every consumption written —
every burn, capture, reversal and expired lot.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 05:00:00.000000
"""
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lot_consumptions', schema=None) as batch_op:
        batch_op.drop_index('ix_lot_consumptions_entry_id')


def downgrade() -> None:
    with op.batch_alter_table('lot_consumptions', schema=None) as batch_op:
        batch_op.create_index('ix_lot_consumptions_entry_id', ['entry_id'], unique=False)
