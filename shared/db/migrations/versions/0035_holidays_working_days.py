"""holidays: a day of the business-day calendar is a holiday or a make-up working day

* holidays.kind: 'holiday' (a weekday on which no settlement payment is made; every row before this
  migration) or 'working_day' (a Saturday or Sunday on which payments are made, as the make-up working
  days of the Chinese, Korean or Taiwanese calendars, which move a weekend day's work to stand for a
  bridged holiday).

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-06 03:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('holidays', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=12), nullable=False, server_default='holiday'))
        batch_op.create_check_constraint(op.f('ck_holidays_kind'), "kind IN ('holiday', 'working_day')")


def downgrade() -> None:
    op.execute("DELETE FROM holidays WHERE kind = 'working_day'")  # no place for them before 0035
    with op.batch_alter_table('holidays', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_holidays_kind'), type_='check')
        batch_op.drop_column('kind')
