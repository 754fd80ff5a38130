"""webhook_deliveries: a delivery may be cancelled, never to be sent

* webhook_deliveries.status: 'pending', 'delivered', 'dead' or, new, 'cancelled': a delivery still
  pending when the member it names withdrew its consent from the partner or was erased, or when its
  partner was terminated (every event but settlement.ready), is never sent; its last_error says why.

On SQLite the CHECK is changed by rebuilding the table (batch mode). SQLite refuses to drop a table
that rows of another table refer to while the connection enforces foreign keys (the network's do, and
an upgrade runs in one transaction, where that cannot be switched off), so the attempts are set aside
in a temporary table for the rebuild and put back as they were, their ids kept. The partial index
ix_webhook_deliveries_endpoint_due (migration 0043) is built again with its WHERE.

The downgrade deletes the cancelled deliveries and their attempts: before 0048 they have no place, and
as dead letters an operator could replay them to the partner they must not reach.

Revision ID: 0048
Revises: 0047
Create Date: 2026-12-10 15:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0048'
down_revision = '0047'
branch_labels = None
depends_on = None

WITH_CANCELLED = "status IN ('pending', 'delivered', 'dead', 'cancelled')"
WITHOUT = "status IN ('pending', 'delivered', 'dead')"
ATTEMPT_COLUMNS = "id, delivery_id, attempted_at, status_code, error, duration_ms"


def _status_check(condition: str) -> None:
    name = op.f('ck_webhook_deliveries_status')
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(name, 'webhook_deliveries', type_='check')
        op.create_check_constraint(name, 'webhook_deliveries', condition)
        return
    op.execute(f"CREATE TEMP TABLE webhook_attempts_0048 AS SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts")
    op.execute("DELETE FROM webhook_attempts")
    op.drop_index('ix_webhook_deliveries_endpoint_due', table_name='webhook_deliveries')
    with op.batch_alter_table('webhook_deliveries', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint(name, type_='check')
        batch_op.create_check_constraint(name, condition)
    op.create_index('ix_webhook_deliveries_endpoint_due', 'webhook_deliveries',
                    ['endpoint_id', 'next_attempt_at', 'id'], unique=False,
                    sqlite_where=sa.text("status = 'pending'"))
    op.execute(f"INSERT INTO webhook_attempts ({ATTEMPT_COLUMNS}) SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts_0048")
    op.execute("DROP TABLE webhook_attempts_0048")


def upgrade() -> None:
    _status_check(WITH_CANCELLED)


def downgrade() -> None:
    op.execute("DELETE FROM webhook_attempts WHERE delivery_id IN "
               "(SELECT id FROM webhook_deliveries WHERE status = 'cancelled')")
    op.execute("DELETE FROM webhook_deliveries WHERE status = 'cancelled'")
    _status_check(WITHOUT)
