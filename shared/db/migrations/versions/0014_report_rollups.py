"""report roll-ups: per-cycle sums written when a cycle is settled

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 06:35:57.794671
"""
from alembic import op
import sqlalchemy as sa
import shared.db.types


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_rollups',
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('rolled_up_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_date'], ['cycles.cycle_date'], name=op.f('fk_report_rollups_cycle_date_cycles')),
    sa.PrimaryKeyConstraint('cycle_date', name=op.f('pk_report_rollups'))
    )
    op.create_table('report_cycle_campaigns',
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('campaign', sa.String(length=120), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_date'], ['report_rollups.cycle_date'], name=op.f('fk_report_cycle_campaigns_cycle_date_report_rollups')),
    sa.PrimaryKeyConstraint('cycle_date', 'partner_id', 'campaign', name=op.f('pk_report_cycle_campaigns'))
    )
    op.create_table('report_cycle_earns',
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('earns', sa.BigInteger(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('earns_with_amount', sa.BigInteger(), nullable=False),
    sa.Column('purchase_amount_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_date'], ['report_rollups.cycle_date'], name=op.f('fk_report_cycle_earns_cycle_date_report_rollups')),
    sa.PrimaryKeyConstraint('cycle_date', 'partner_id', name=op.f('pk_report_cycle_earns'))
    )
    op.create_table('report_cycle_lines',
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('payer', sa.String(length=40), nullable=False),
    sa.Column('payee', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('amount_micro', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_date'], ['report_rollups.cycle_date'], name=op.f('fk_report_cycle_lines_cycle_date_report_rollups')),
    sa.PrimaryKeyConstraint('cycle_date', 'payer', 'payee', 'kind', name=op.f('pk_report_cycle_lines'))
    )
    op.create_table('report_cycle_members',
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('transactions', sa.BigInteger(), nullable=False),
    sa.Column('earns', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_date'], ['report_rollups.cycle_date'], name=op.f('fk_report_cycle_members_cycle_date_report_rollups')),
    sa.PrimaryKeyConstraint('partner_id', 'cycle_date', 'member_id', name=op.f('pk_report_cycle_members'))
    )
    op.create_index('ix_report_cycle_members_cycle', 'report_cycle_members', ['cycle_date'], unique=False)

    op.create_table('report_cycle_points',
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('funder', sa.String(length=40), nullable=False),
    sa.Column('party', sa.String(length=40), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_date'], ['report_rollups.cycle_date'], name=op.f('fk_report_cycle_points_cycle_date_report_rollups')),
    sa.PrimaryKeyConstraint('cycle_date', 'category', 'funder', 'party', name=op.f('pk_report_cycle_points'))
    )
    op.create_table('report_rollup_months',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('rolled_up_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('month', name=op.f('pk_report_rollup_months'))
    )
    op.create_table('report_month_members',
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('transactions', sa.BigInteger(), nullable=False),
    sa.Column('earns', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['month'], ['report_rollup_months.month'], name=op.f('fk_report_month_members_month_report_rollup_months')),
    sa.PrimaryKeyConstraint('partner_id', 'month', 'member_id', name=op.f('pk_report_month_members'))
    )


def downgrade() -> None:
    op.drop_table('report_month_members')
    op.drop_table('report_rollup_months')
    op.drop_table('report_cycle_points')
    op.drop_index('ix_report_cycle_members_cycle', table_name='report_cycle_members')
    op.drop_table('report_cycle_members')
    op.drop_table('report_cycle_lines')
    op.drop_table('report_cycle_earns')
    op.drop_table('report_cycle_campaigns')
    op.drop_table('report_rollups')
