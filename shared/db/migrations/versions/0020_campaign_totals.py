"""campaign_totals: what a capped campaign gave in all, one row per campaign

* campaign_totals (campaign PRIMARY KEY, points BIGINT, CHECK points >= 0).

A campaign's cap in all was checked by summing every award the campaign had given, once or twice
per posting: an earn under a campaign with 100,000 awards took 106 ms on SQLite and 42 ms on
PostgreSQL, growing with every award. A unit that checks the cap now reads one row. Rows are made
when first needed, from the awards' sum, so nothing is filled in here.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 14:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign_totals',
    sa.Column('campaign', sa.String(length=120), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('points >= 0', name=op.f('ck_campaign_totals_points_not_negative')),
    sa.PrimaryKeyConstraint('campaign', name=op.f('pk_campaign_totals'))
    )


def downgrade() -> None:
    op.drop_table('campaign_totals')
