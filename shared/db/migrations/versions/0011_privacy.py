"""member erasures (personal data erased, points forfeited)

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-26 04:45:00.000000
"""
from alembic import op
import sqlalchemy as sa
import shared.db.types


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('member_erasures',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=True),
    sa.Column('points_forfeited', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('erased_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('points_forfeited >= 0', name=op.f('ck_member_erasures_points_forfeited_not_negative')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_member_erasures_entry_id_entries')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_erasures_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_erasures')),
    sa.UniqueConstraint('member_id', name=op.f('uq_member_erasures_member_id'))
    )


def downgrade() -> None:
    op.drop_table('member_erasures')
