"""tiers, activity status, expiry reminders and member merges

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-26 03:48:22.115095
"""
from alembic import op
import sqlalchemy as sa
import shared.db.types


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('expiry_reminders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('days_before', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('first_expires_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('created_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('days_before > 0', name=op.f('ck_expiry_reminders_days_before_positive')),
    sa.CheckConstraint('points > 0', name=op.f('ck_expiry_reminders_points_positive')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_expiry_reminders_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_expiry_reminders')),
    sa.UniqueConstraint('member_id', 'expires_on', 'days_before', name='uq_expiry_reminders_member_date_days')
    )
    with op.batch_alter_table('expiry_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_expiry_reminders_created_at'), ['created_at'], unique=False)

    op.create_table('member_status_history',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=False),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('last_activity_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint("to_status IN ('active', 'at_risk', 'dormant')", name=op.f('ck_member_status_history_to_status')),
    sa.CheckConstraint('from_status <> to_status', name=op.f('ck_member_status_history_changed')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_status_history_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_status_history'))
    )
    with op.batch_alter_table('member_status_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_status_history_member_id'), ['member_id'], unique=False)

    op.create_table('member_merges',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('survivor_id', sa.String(length=40), nullable=False),
    sa.Column('duplicate_id', sa.String(length=40), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=True),
    sa.Column('available', sa.BigInteger(), nullable=False),
    sa.Column('held', sa.BigInteger(), nullable=False),
    sa.Column('lots', sa.Integer(), nullable=False),
    sa.Column('holds', sa.Integer(), nullable=False),
    sa.Column('links', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('survivor_id <> duplicate_id', name=op.f('ck_member_merges_distinct_members')),
    sa.ForeignKeyConstraint(['duplicate_id'], ['members.id'], name=op.f('fk_member_merges_duplicate_id_members')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_member_merges_entry_id_entries')),
    sa.ForeignKeyConstraint(['survivor_id'], ['members.id'], name=op.f('fk_member_merges_survivor_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_merges')),
    sa.UniqueConstraint('duplicate_id', name=op.f('uq_member_merges_duplicate_id'))
    )
    with op.batch_alter_table('member_merges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_merges_survivor_id'), ['survivor_id'], unique=False)

    op.create_table('member_tier_history',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('from_tier', sa.String(length=32), nullable=False),
    sa.Column('to_tier', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('qualifying_points', sa.BigInteger(), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=True),
    sa.Column('at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint("reason IN ('qualified', 'anniversary_review', 'merge')", name=op.f('ck_member_tier_history_reason')),
    sa.CheckConstraint('from_tier <> to_tier', name=op.f('ck_member_tier_history_changed')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_member_tier_history_entry_id_entries')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_tier_history_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_tier_history'))
    )
    with op.batch_alter_table('member_tier_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_tier_history_member_id'), ['member_id'], unique=False)

    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tier', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('tier_since', shared.db.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('tier_anniversary_at', shared.db.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('activity_status', sa.String(length=16), server_default='active', nullable=False))
        batch_op.add_column(sa.Column('activity_status_since', shared.db.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('merged_into', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_members_merged_into'), ['merged_into'], unique=False)
        batch_op.create_index(batch_op.f('ix_members_tier_anniversary_at'), ['tier_anniversary_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_members_tier_anniversary_at'))
        batch_op.drop_index(batch_op.f('ix_members_merged_into'))
        batch_op.drop_column('merged_into')
        batch_op.drop_column('activity_status_since')
        batch_op.drop_column('activity_status')
        batch_op.drop_column('tier_anniversary_at')
        batch_op.drop_column('tier_since')
        batch_op.drop_column('tier')

    with op.batch_alter_table('member_tier_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_tier_history_member_id'))

    op.drop_table('member_tier_history')
    with op.batch_alter_table('member_merges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_merges_survivor_id'))

    op.drop_table('member_merges')
    with op.batch_alter_table('member_status_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_status_history_member_id'))

    op.drop_table('member_status_history')
    with op.batch_alter_table('expiry_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_expiry_reminders_created_at'))

    op.drop_table('expiry_reminders')
