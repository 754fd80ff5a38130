"""ledger: indexes that only hold what is read

* ix_entries_original_entry_id and ix_entries_hold_id on entries, and
  ix_obligation_lines_original_line_id on obligation_lines, are replaced by partial indexes on the
  same columns (suffix ``_set``): only the rows whose column is set (reversals, a hold's
  resolutions, reversals' lines).
* ix_transfers_debit_account and ix_transfers_credit_account are dropped.
* ix_obligation_lines_payer_kind (payer, kind) becomes ix_obligation_lines_prepaid_funding
  (payer, cycle_date) WHERE kind = 'prepaid_funding'.

Every index entry is written by every posting, and an earn's rows carried 22 to 28 of them. Most
entries point at no original entry and no hold, most lines at no original line: those indexes held
a NULL for nearly every row, and every reader asks for a value (``= id``, ``IN (ids)``). No path reads
transfers by account (every posting names a partner's or the network's account; verify sums every
account over the whole table), and the only readers of lines by payer ask for prepaid funding. An
earn now writes 16 to 20 index entries.

Each index is built with a plain CREATE INDEX, which holds writes to its table (not reads) until
it is built; the old indexes are dropped only after every new one is built, as DROP INDEX holds
reads too until the upgrade commits. On a large ledger, run the upgrade in a quiet hour
(docs/operations.md).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 16:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

PARTIAL = (("entries", "ix_entries_original_entry_id", "original_entry_id"),
           ("entries", "ix_entries_hold_id", "hold_id"),
           ("obligation_lines", "ix_obligation_lines_original_line_id", "original_line_id"))
PREPAID = "kind = 'prepaid_funding'"


def upgrade() -> None:
    # every new index first (each build holds writes to its table); then the drops, which hold reads
    for table, name, column in PARTIAL:
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(f"{name}_set", table, [column], unique=False, sqlite_where=where, postgresql_where=where)
    op.create_index('ix_obligation_lines_prepaid_funding', 'obligation_lines', ['payer', 'cycle_date'],
                    unique=False, sqlite_where=sa.text(PREPAID), postgresql_where=sa.text(PREPAID))
    for table, name, _column in PARTIAL:
        op.drop_index(name, table_name=table)
    op.drop_index('ix_obligation_lines_payer_kind', table_name='obligation_lines')
    op.drop_index('ix_transfers_debit_account', table_name='transfers')
    op.drop_index('ix_transfers_credit_account', table_name='transfers')


def downgrade() -> None:
    op.create_index('ix_transfers_credit_account', 'transfers', ['credit_account'], unique=False)
    op.create_index('ix_transfers_debit_account', 'transfers', ['debit_account'], unique=False)
    op.create_index('ix_obligation_lines_payer_kind', 'obligation_lines', ['payer', 'kind'], unique=False)
    for table, name, column in PARTIAL:
        op.create_index(name, table, [column], unique=False)
    op.drop_index('ix_obligation_lines_prepaid_funding', table_name='obligation_lines')
    for table, name, _column in PARTIAL:
        op.drop_index(f"{name}_set", table_name=table)
