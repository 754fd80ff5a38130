"""members: the merged_into index holds only merged duplicates

* ix_members_merged_into becomes partial: WHERE merged_into IS NOT NULL.

Every posting locks its members with ``id = ANY(...) AND merged_into IS NULL``. On a database
whose statistics were not yet gathered (a new network, a bulk import before autovacuum's first
ANALYZE), PostgreSQL took the full merged_into index for ``merged_into IS NULL`` — a condition
nearly every member meets — and then tested each member against the list: 45 to 97 ms per
batch of 1,000 events at 5,000 members, growing with the members. The partial index holds only
the few merged duplicates (what finding a survivor's duplicates reads) and cannot serve
``IS NULL``, so the lock takes the primary key whatever the statistics say.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 15:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

PARTIAL = sa.text('merged_into IS NOT NULL')


def upgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index('ix_members_merged_into')
        batch_op.create_index('ix_members_merged_into', ['merged_into'], unique=False,
                              sqlite_where=PARTIAL, postgresql_where=PARTIAL)


def downgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index('ix_members_merged_into', sqlite_where=PARTIAL, postgresql_where=PARTIAL)
        batch_op.create_index('ix_members_merged_into', ['merged_into'], unique=False)
