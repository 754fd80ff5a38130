"""report roll-ups: a month's members summed as its cycles are rolled up, not only once it is over

* report_month_members holds, for every month with rolled-up cycles, the sum per partner and
  member of those cycles' ``report_cycle_members`` rows; each cycle's roll-up adds its own.
* report_rollup_months (the marker of a complete month) is dropped with its foreign key: a
  month's rows no longer wait for the month to end, and which cycles they hold is read from
  ``report_rollups``.

Before, a month to date read one row per member and cycle (millions for a busy partner); now it
reads one per member. The months that had cycles rolled up but were not over get their rows here,
from ``report_cycle_members``, in one INSERT … SELECT.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 08:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import shared.db.types


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def _month_of(column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"CAST(date_trunc('month', {column}) AS date)"
    return f"date({column}, 'start of month')"


def upgrade() -> None:
    with op.batch_alter_table('report_month_members', schema=None) as batch_op:
        batch_op.drop_constraint('fk_report_month_members_month_report_rollup_months', type_='foreignkey')
    month = _month_of("cycle_date")
    op.execute(
        "INSERT INTO report_month_members (partner_id, month, member_id, transactions, earns) "
        f"SELECT partner_id, {month}, member_id, sum(transactions), sum(earns) FROM report_cycle_members "
        f"WHERE {month} NOT IN (SELECT month FROM report_rollup_months) "
        f"GROUP BY partner_id, {month}, member_id")
    op.drop_table('report_rollup_months')


def downgrade() -> None:
    op.create_table('report_rollup_months',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('rolled_up_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('month', name=op.f('pk_report_rollup_months'))
    )
    # the earlier schema held only complete months, each with its marker: without markers its
    # reports read the cycles' rows of every month, which is correct, only slower
    op.execute("DELETE FROM report_month_members")
    with op.batch_alter_table('report_month_members', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_report_month_members_month_report_rollup_months', 'report_rollup_months',
                                    ['month'], ['month'])
