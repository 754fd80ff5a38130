"""hold_lots.lot_expires_at: the expiry a lot had when a hold reserved its points

* hold_lots.lot_expires_at (nullable): set by every hold from now on;
* open holds' rows get their lot's expiry now (for all but a lot already given a reversal's grace
  while held, that is the expiry it had when the points were reserved).

Reserved points do not expire while held; if their lot expired meanwhile, what a void (a partial
capture, a timeout) releases expires at once. But a reversal that returns points to an expired lot
gives the lot a grace period (only the returned points should get it): the lot's expiry moved, and
the points a hold had reserved in it came back unexpired when released. With the expiry they were
reserved under kept beside them, a release expires them whatever happened to the lot's date since.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-04 19:40:00.000000
"""
from alembic import op
import sqlalchemy as sa

import shared.db.types


revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hold_lots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lot_expires_at', shared.db.types.UTCDateTime(), nullable=True))
    op.execute("UPDATE hold_lots SET lot_expires_at = (SELECT lots.expires_at FROM lots WHERE lots.id = hold_lots.lot_id) "
               "WHERE hold_id IN (SELECT id FROM holds WHERE status = 'open')")


def downgrade() -> None:
    with op.batch_alter_table('hold_lots', schema=None) as batch_op:
        batch_op.drop_column('lot_expires_at')
