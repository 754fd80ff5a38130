"""outstanding_points: the worker's last measure of the points open in unexpired lots

* outstanding_points (billing PK, points, measured_at).

The ``pointsnet_outstanding_points`` gauge summed every open lot of the network at each scrape of
each API process: 195 ms of wall time (three PostgreSQL processes) at one million open lots, and it
grows with the network's open lots. The worker now measures it every minute into this table and
the scrapes read it.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 17:15:00.000000
"""
from alembic import op
import sqlalchemy as sa
import shared.db.types


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outstanding_points',
                    sa.Column('billing', sa.String(length=16), nullable=False),
                    sa.Column('points', sa.BigInteger(), nullable=False),
                    sa.Column('measured_at', shared.db.types.UTCDateTime(), nullable=False),
                    sa.PrimaryKeyConstraint('billing', name=op.f('pk_outstanding_points')))


def downgrade() -> None:
    op.drop_table('outstanding_points')
