"""ledger: indexes that only hold what is read

* ix_entries_original_entry_id and ix_entries_hold_id on entries, and
  ix_obligation_lines_original_line_id on obligation_lines, keep their columns and become partial:
  only the rows whose column is set (reversals, a hold's resolutions, reversals' lines).
* ix_transfers_debit_account and ix_transfers_credit_account are dropped.
* ix_obligation_lines_payer_kind (payer, kind) becomes ix_obligation_lines_prepaid_funding
  (payer, cycle_date) WHERE kind = 'prepaid_funding'.

Every index entry is written by every posting, and an earn's rows carried 22 to 28 of them. Most
entries point at no original entry and no hold, most lines at no original line: those indexes held
a NULL for nearly every row, and every reader asks for a value (``= id``, ``IN (ids)``). No path reads
transfers by account (every posting names a partner's or the network's account; verify sums every
account over the whole table), and the only readers of lines by payer ask for prepaid funding. An
earn now writes 16 to 20 index entries.

Each index is built with a plain CREATE INDEX, which holds writes to its table until it is built:
on a large ledger, run the upgrade in a quiet hour (docs/operations.md).

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
    for table, name, column in PARTIAL:
        op.drop_index(name, table_name=table)
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, table, [column], unique=False, sqlite_where=where, postgresql_where=where)
    op.drop_index('ix_transfers_debit_account', table_name='transfers')
    op.drop_index('ix_transfers_credit_account', table_name='transfers')
    op.create_index('ix_obligation_lines_prepaid_funding', 'obligation_lines', ['payer', 'cycle_date'],
                    unique=False, sqlite_where=sa.text(PREPAID), postgresql_where=sa.text(PREPAID))
    op.drop_index('ix_obligation_lines_payer_kind', table_name='obligation_lines')


def downgrade() -> None:
    op.create_index('ix_obligation_lines_payer_kind', 'obligation_lines', ['payer', 'kind'], unique=False)
    op.drop_index('ix_obligation_lines_prepaid_funding', table_name='obligation_lines')
    op.create_index('ix_transfers_credit_account', 'transfers', ['credit_account'], unique=False)
    op.create_index('ix_transfers_debit_account', 'transfers', ['debit_account'], unique=False)
    for table, name, column in PARTIAL:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [column], unique=False)
