"""network_settings: the time zone and cut-off the network's cycles are cut by

* network_settings (name, value, set_at): ``timezone`` and ``cycle_cutoff_minutes`` as the network
  first ran with them. A process started with others on a network that has ledger entries refuses to
  start (shared/ledger/cycles.py, ``pin_cycle_settings``): other values would move the boundaries of
  cycles already cut, settled and signed.

The table starts empty: the first process to start after the upgrade records its settings (a network
upgraded while running with other settings than it began with cannot be told from here).

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-06 03:30:00.000000
"""
from alembic import op
import sqlalchemy as sa

import shared.db.types


revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_settings',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('set_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_network_settings'))
    )


def downgrade() -> None:
    op.drop_table('network_settings')
