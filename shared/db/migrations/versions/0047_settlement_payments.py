"""settlement_payments: each bank transfer recorded against a settlement, so a payment may come in parts

* settlement_payments (id, cycle_date, party, amount_minor, bank_reference, recorded_at): one row per
  transfer recorded with ``clearing mark-paid`` or the dashboard's Mark paid, its amount in minor units
  (> 0) and its bank reference, once per settlement (UNIQUE cycle_date, party, bank_reference). A
  settlement is paid (or received) when its payments add up to its by-bank amount, its sign aside;
  until then it stays ``due`` (shared/settlement/finance.py).

Every settlement already ``paid`` or ``received`` gets its one payment: the whole by-bank amount, with
its bank reference and recorded_at. Old data may hold a recorded settlement without a bank reference
(written by hand: none to record, so no row), one without a time (recorded_at stays null) and one
whose by-bank amount is 0 (a net wholly settled from a float, recorded before migration 0029: nothing
moved by bank, so no row). The downgrade drops the table: each settlement keeps its status and its
last bank reference, the parts of a settlement still due are lost.

Revision ID: 0047
Revises: 0046
Create Date: 2026-12-10 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

import shared.db.types


revision = '0047'
down_revision = '0046'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('settlement_payments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('party', sa.String(length=40), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('bank_reference', sa.String(length=128), nullable=False),
    sa.Column('recorded_at', shared.db.types.UTCDateTime(), nullable=True),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_settlement_payments_amount_positive')),
    sa.ForeignKeyConstraint(['cycle_date', 'party'], ['settlements.cycle_date', 'settlements.party'],
                            name=op.f('fk_settlement_payments_cycle_date_settlements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_payments')),
    sa.UniqueConstraint('cycle_date', 'party', 'bank_reference', name=op.f('uq_settlement_payments_cycle_date'))
    )
    op.execute("INSERT INTO settlement_payments (cycle_date, party, amount_minor, bank_reference, recorded_at) "
               "SELECT cycle_date, party, ABS(net_minor + from_float_minor), bank_reference, recorded_at "
               "FROM settlements WHERE status IN ('paid', 'received') AND bank_reference IS NOT NULL "
               "AND TRIM(bank_reference) <> '' AND net_minor + from_float_minor <> 0 ORDER BY cycle_date, party")


def downgrade() -> None:
    op.drop_table('settlement_payments')
