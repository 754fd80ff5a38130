"""webhook_deliveries: each endpoint's pending deliveries in the order they come due

* ix_webhook_deliveries_endpoint_due (endpoint_id, next_attempt_at, id) WHERE status = 'pending'.

The delivery job claims fairly per endpoint: each endpoint's oldest due delivery before anyone's
second, at most 12 of one endpoint. Ranked over every due pending delivery, each claim sorted the
whole backlog (200,000 due deliveries over 50 endpoints: about 750 ms a claim on PostgreSQL, the
sort spilling to disk, up to 40 claims a run). Through this index a claim reads the first 12 due
deliveries of each endpoint only (a few milliseconds). A delivery leaves the index when it is
delivered or dead, so it holds the backlog, not the history; ix_webhook_deliveries_due stays.

The index is built with a plain CREATE INDEX, which holds writes to webhook_deliveries (and so
postings that queue a webhook) until it is built: one read of the table, quick beside a
ledger index (delivered deliveries are pruned after 30 days).

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-07 13:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0043'
down_revision = '0042'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_webhook_deliveries_endpoint_due', 'webhook_deliveries',
                    ['endpoint_id', 'next_attempt_at', 'id'], unique=False,
                    sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_index('ix_webhook_deliveries_endpoint_due', table_name='webhook_deliveries')
