"""webhook_endpoints: a pause after a delivery to the endpoint timed out

* webhook_endpoints.paused_until: while it lies ahead, the delivery job claims none of the
  endpoint's deliveries (an operator's replay still goes); NULL: not paused;
* webhook_endpoints.pauses: the pauses since the endpoint last took a delivery, each twice as long
  as the one before, up to a longest; a delivery it takes sets it back to 0.

A delivery the job did not send because an earlier one to the same URL timed out in the run no longer
counts as a try: it waits out the pause instead, so a slow moment costs a backlog none of its tries,
and a dead receiver's backlog comes due once per pause rather than filling every run's claims.

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-06 09:40:00.000000
"""
from alembic import op
import sqlalchemy as sa

from shared.db.types import UTCDateTime


revision = '0040'
down_revision = '0039'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_until', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('pauses', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_check_constraint(op.f('ck_webhook_endpoints_pauses'), "pauses >= 0")


def downgrade() -> None:
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_webhook_endpoints_pauses'), type_='check')
        batch_op.drop_column('pauses')
        batch_op.drop_column('paused_until')
