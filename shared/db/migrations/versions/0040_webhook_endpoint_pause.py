"""webhook_endpoints: a pause after a delivery to the endpoint timed out

* webhook_endpoints.paused_until: while it lies ahead, the delivery job claims none of the
  endpoint's deliveries (an operator's replay still goes); NULL: not paused;
* webhook_endpoints.pauses: the pauses since the endpoint last took a delivery, each twice as long
  as the one before, up to a longest; a delivery it takes sets it back to 0.

A delivery the job did not send because an earlier one to the same URL timed out in the run no longer
counts as a try: it waits out the pause instead, so a slow moment costs a backlog none of its tries,
and a dead receiver's backlog comes due once per pause rather than filling every run's claims.

On SQLite both columns are added in place (``ALTER TABLE ... ADD COLUMN``, the CHECK inline) and the
downgrade drops them in place: the first form of this migration rebuilt the table, which SQLite refuses
on a network whose endpoints have deliveries (``webhook_deliveries.endpoint_id`` refers to them and the
network's connections enforce foreign keys). A network that ran the first form keeps its table as it
is (the CHECK a table constraint); its downgrade still rebuilds the table.

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
    if op.get_bind().dialect.name == "sqlite":
        # Added in place, the CHECK inline: a batch rebuild would drop webhook_endpoints, which
        # webhook_deliveries refers to, and the network's connections enforce foreign keys (a network
        # with a delivery stopped here with "FOREIGN KEY constraint failed").
        op.add_column('webhook_endpoints', sa.Column('paused_until', UTCDateTime(), nullable=True))
        op.execute("ALTER TABLE webhook_endpoints ADD COLUMN pauses INTEGER DEFAULT '0' NOT NULL "
                   "CONSTRAINT ck_webhook_endpoints_pauses CHECK (pauses >= 0)")
        return
    op.add_column('webhook_endpoints', sa.Column('paused_until', UTCDateTime(), nullable=True))
    op.add_column('webhook_endpoints', sa.Column('pauses', sa.Integer(), nullable=False, server_default='0'))
    op.create_check_constraint(op.f('ck_webhook_endpoints_pauses'), 'webhook_endpoints', "pauses >= 0")


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        table = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'webhook_endpoints'").scalar_one()
        if "pauses INTEGER DEFAULT '0' NOT NULL CONSTRAINT" in table:  # added in place (above): dropped so
            op.execute("ALTER TABLE webhook_endpoints DROP COLUMN pauses")  # (SQLite 3.35 and later)
            op.execute("ALTER TABLE webhook_endpoints DROP COLUMN paused_until")
            return
        # added by the first form of this migration, the CHECK a table constraint: only a rebuild drops
        # it, which SQLite refuses while a delivery refers to an endpoint
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_webhook_endpoints_pauses'), type_='check')
        batch_op.drop_column('pauses')
        batch_op.drop_column('paused_until')
