"""entries.xid: the writing transaction, and the partner index GET /v1/transactions pages on

* entries.xid (bigint, NOT NULL): 0 for the entries already written; on PostgreSQL every later
  entry gets the id of the transaction that writes it (``DEFAULT pg_current_xact_id()``, as bigint);
  on SQLite the journal sets it (one more than the highest rowid of entries when the unit writes,
  under the one write lock).
* ix_entries_partner_xid (partner_id, xid, id): a partner's entries in that order.

``GET /v1/transactions`` paged on (posted_at, id). ``posted_at`` is read when a unit starts and the
entry's id is made before it commits, so an entry could commit behind a cursor already given out,
and a partner syncing with the cursor never got it. It now pages on (xid, id) and on PostgreSQL lists
only entries below every transaction of the database still running: an entry that commits later has
a larger xid than any entry already listed (docs/ledger.md, "Listing order").

Adding the column writes no row: 0 is the value the rows already there read (PostgreSQL keeps it in
the catalog; SQLite's ADD COLUMN rewrites nothing). The index is built with a plain CREATE INDEX: one
scan of ``entries``, during which its reads and writes wait (adding the column locks the table until the
upgrade commits; docs/operations.md). ix_entries_partner_posted stays: a partner's issuance of the day
(its daily cap's counter) is read through it.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-05 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None

WRITING_TRANSACTION = "(pg_current_xact_id()::text::bigint)"


def upgrade() -> None:
    op.add_column('entries', sa.Column('xid', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
    if op.get_bind().dialect.name == "postgresql":  # the entries from now on: their transaction's id
        op.execute(f"ALTER TABLE entries ALTER COLUMN xid SET DEFAULT {WRITING_TRANSACTION}")
    op.create_index('ix_entries_partner_xid', 'entries', ['partner_id', 'xid', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_entries_partner_xid', table_name='entries')
    # plain ALTER TABLE (SQLite 3.35+ too): no batch rebuild of the ledger's largest table
    op.execute("ALTER TABLE entries DROP COLUMN xid")
