"""settlement runs, settlements and holidays

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:33:08.812175
"""
from alembic import op
import sqlalchemy as sa
import shared.db.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('holidays',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_holidays'))
    )
    op.create_table('settlement_runs',
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('directory', sa.Text(), nullable=False),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=False),
    sa.Column('settled_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_date'], ['cycles.cycle_date'], name=op.f('fk_settlement_runs_cycle_date_cycles')),
    sa.PrimaryKeyConstraint('cycle_date', name=op.f('pk_settlement_runs')),
    sa.UniqueConstraint('run_id', name=op.f('uq_settlement_runs_run_id'))
    )
    op.create_table('settlements',
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('party', sa.String(length=40), nullable=False),
    sa.Column('net_minor', sa.BigInteger(), nullable=False),
    sa.Column('payment_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('bank_reference', sa.String(length=128), nullable=True),
    sa.Column('recorded_at', shared.db.types.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('due', 'paid', 'received', 'nothing_due')", name=op.f('ck_settlements_status')),
    sa.ForeignKeyConstraint(['cycle_date'], ['settlement_runs.cycle_date'], name=op.f('fk_settlements_cycle_date_settlement_runs')),
    sa.PrimaryKeyConstraint('cycle_date', 'party', name=op.f('pk_settlements'))
    )


def downgrade() -> None:
    op.drop_table('settlements')
    op.drop_table('settlement_runs')
    op.drop_table('holidays')
