"""transparency: ledger leaves, subtrees, sealed cycles, checkpoints

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 04:27:04.120442
"""
from alembic import op
import sqlalchemy as sa
import shared.db.types


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.CheckConstraint('tree_size >= 0', name=op.f('ck_checkpoints_size_nonnegative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoints'))
    )
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkpoints_tree_size'), ['tree_size'], unique=False)

    op.create_table('ledger_leaves',
    sa.Column('leaf_index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('sealed_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('leaf_index >= 0', name=op.f('ck_ledger_leaves_index_nonnegative')),
    sa.PrimaryKeyConstraint('leaf_index', name=op.f('pk_ledger_leaves')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_ledger_leaves_entry_id'))
    )
    op.create_table('ledger_nodes',
    sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('node_index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.CheckConstraint('level >= 1 AND node_index >= 0', name=op.f('ck_ledger_nodes_position')),
    sa.PrimaryKeyConstraint('level', 'node_index', name=op.f('pk_ledger_nodes'))
    )
    op.create_table('sealed_cycles',
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('sealed_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_date'], ['cycles.cycle_date'], name=op.f('fk_sealed_cycles_cycle_date_cycles')),
    sa.PrimaryKeyConstraint('cycle_date', name=op.f('pk_sealed_cycles'))
    )


def downgrade() -> None:
    op.drop_table('sealed_cycles')
    op.drop_table('ledger_nodes')
    op.drop_table('ledger_leaves')
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkpoints_tree_size'))

    op.drop_table('checkpoints')
