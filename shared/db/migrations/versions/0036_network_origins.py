"""network_origins: every origin the network has signed checkpoints under

* network_origins (origin, first_used_at): ``<public authority>/ledger`` of each checkpoint note the
  network signs, recorded with the checkpoint when the origin is new.

``pointsnet verify`` checked each note under the origin written in it (the public authority may be
set or changed while earlier checkpoints stay valid), so a note the network's key signed for any
origin passed. It now also refuses a note under an origin this table does not hold. The origins of
the checkpoints already stored are recorded here from their notes (each with its first checkpoint's
time): what was signed before this migration is taken as the network's history.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-06 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

import shared.db.types


revision = '0036'
down_revision = '0035'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_origins',
    sa.Column('origin', sa.Text(), nullable=False),
    sa.Column('first_used_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('origin', name=op.f('pk_network_origins'))
    )
    if op.get_bind().dialect.name == "postgresql":
        first_line = "split_part(note, E'\\n', 1)"
    else:
        first_line = "substr(note, 1, instr(note, char(10)) - 1)"
    op.execute(f"INSERT INTO network_origins (origin, first_used_at) SELECT origin, MIN(created_at) FROM "
               f"(SELECT {first_line} AS origin, created_at FROM checkpoints) AS notes "
               "WHERE origin <> '' GROUP BY origin")


def downgrade() -> None:
    op.drop_table('network_origins')
