"""cycles.payment_date: a cycle's payment date, fixed when it is closed for settlement

* cycles.payment_date DATE NULL: the date the cycle's net positions are due, from the business calendar
  as it stood when the cycle was closed for settlement (``runs.prepare_cycle``, a unit of work committed
  before any file is written). The settlement and every later writing of its files read it from here.
* cycles settled before this revision get the payment date their settlements recorded (every party of a
  cycle has the same); a settled cycle without a settlement row (nothing moved) keeps NULL: its date is
  written only in its files, and writing them again computes it as before.

A settlement whose run wrote its signed files and then failed to commit (a crash, a lost connection)
computed its payment date again when it was retried: a holiday added to the calendar in between gave
the retry another date, and it replaced the signed directory with different bytes, though a re-run must
write the same files byte for byte (the design's settlement rules).

Revision ID: 0049
Revises: 0048
Create Date: 2026-12-11 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy import text


revision = '0049'
down_revision = '0048'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cycles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_date', sa.Date(), nullable=True))
    op.get_bind().execute(text(
        "UPDATE cycles SET payment_date = (SELECT MIN(s.payment_date) FROM settlements s "
        "WHERE s.cycle_date = cycles.cycle_date) "
        "WHERE EXISTS (SELECT 1 FROM settlements s WHERE s.cycle_date = cycles.cycle_date)"))


def downgrade() -> None:
    # SQLite drops the column in place (3.35 and later): a batch would rebuild the table, and dropping the
    # old one fails while the network's connections enforce the foreign keys every ledger table has to it
    op.execute("ALTER TABLE cycles DROP COLUMN payment_date")
