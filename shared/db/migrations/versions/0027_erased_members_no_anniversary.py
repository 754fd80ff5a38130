"""members: an erased member has no tier anniversary

* tier_anniversary_at is cleared on members already erased; erasure clears it from now on.

The tier review reads members by anniversary (ix_members_tier_anniversary_at) and passes over those
not active. An erased member kept its anniversary, so once that and its grace had passed, every
later pass read it again, and more of them with every erasure. A merged member's is cleared on merge.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 17:00:00.000000
"""
from alembic import op


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE members SET tier_anniversary_at = NULL WHERE status = 'erased' AND tier_anniversary_at IS NOT NULL")


def downgrade() -> None:
    pass  # the anniversaries of erased members were never read; nothing to restore
