"""alerts: the dedupe key is unique among open alerts only

* uq_alerts_dedupe_key (unique on the whole table) becomes uq_alerts_open_dedupe_key, a unique
  index on dedupe_key WHERE acknowledged_at IS NULL.

An occurrence of an alert was added to the row with its kind, subject and day whether or not an
operator had acknowledged it, so a partner that crossed its exposure limit again the day its alert
was acknowledged (or a float exhausted again) added to the acknowledged row's count and no open alert
showed it. An occurrence now adds to the open row only, and opens a new one when the day's row was
acknowledged; two recording it at once still make one open row (an INSERT … ON CONFLICT on this
index, shared/alerts.py). The rows already there stay as they are: their keys were unique.

The downgrade gives every acknowledged alert whose key another row shares a key of its own (the key
followed by ``#`` and its id) before the whole-table unique key comes back; no row is lost.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-05 14:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None

OPEN = sa.text('acknowledged_at IS NULL')


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_alerts_dedupe_key', type_='unique')
        batch_op.create_index('uq_alerts_open_dedupe_key', ['dedupe_key'], unique=True,
                              sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.execute("UPDATE alerts SET dedupe_key = dedupe_key || '#' || CAST(id AS VARCHAR(20)) "
               "WHERE acknowledged_at IS NOT NULL AND EXISTS (SELECT 1 FROM alerts AS other "
               "WHERE other.dedupe_key = alerts.dedupe_key AND other.id <> alerts.id)")
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_alerts_open_dedupe_key', sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.create_unique_constraint('uq_alerts_dedupe_key', ['dedupe_key'])
