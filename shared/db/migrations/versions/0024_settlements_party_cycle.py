"""settlements: a party's statements by cycle

* ix_settlements_party_cycle (party, cycle_date) on settlements.

GET /v1/statements lists a partner's statements newest first. The primary key (cycle_date, party)
starts with the cycle, so each call read the whole table: a row per party per settled cycle, some
365,000 rows a year for 1,000 partners. The list is now paginated too, through this index.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 16:45:00.000000
"""
from alembic import op


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_settlements_party_cycle', 'settlements', ['party', 'cycle_date'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_settlements_party_cycle', table_name='settlements')
