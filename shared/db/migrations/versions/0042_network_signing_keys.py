"""network_signing_keys: the network's signing keys, current and retired (public keys only)

* network_signing_keys (key_id, public_key, current_from, retired_at): written by ``pointsnet keys
  rotate-signing``, which retires the key a host signs with and makes a new one. ``GET /v1/network/keys``
  serves every key here beside the one the host signs with; ``pointsnet verify`` and ``pointsnet
  reconcile`` check checkpoints and settlement manifests signed by a retired key with its public key.

A network that never rotated has no row: its key is the one in its key file, as before. Nothing to fill.
The downgrade drops the table, and with it the only copy of each retired public key: save
``GET /v1/network/keys`` first (the previous release checks only what the current key signed).

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-07 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

import shared.db.types


revision = '0042'
down_revision = '0041'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_signing_keys',
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('current_from', shared.db.types.UTCDateTime(), nullable=True),
    sa.Column('retired_at', shared.db.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_network_signing_keys'))
    )


def downgrade() -> None:
    op.drop_table('network_signing_keys')
