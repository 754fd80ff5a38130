"""referrals, activity awards and per-partner issuance counters (velocity limits)

Revision ID: 0009
Revises: 0005
Create Date: 2026-11-26 03:24:45.335997
"""
from alembic import op
import sqlalchemy as sa
import shared.db.types


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('issuance_counters',
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('business_day', sa.Date(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('points >= 0', name=op.f('ck_issuance_counters_points_not_negative')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_issuance_counters_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'business_day', name=op.f('pk_issuance_counters'))
    )
    op.create_table('referrals',
    sa.Column('referee_member_id', sa.String(length=40), nullable=False),
    sa.Column('referrer_member_id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('referee_member_id <> referrer_member_id', name=op.f('ck_referrals_not_self')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_referrals_partner_id_partners')),
    sa.ForeignKeyConstraint(['referee_member_id'], ['members.id'], name=op.f('fk_referrals_referee_member_id_members')),
    sa.ForeignKeyConstraint(['referrer_member_id'], ['members.id'], name=op.f('fk_referrals_referrer_member_id_members')),
    sa.PrimaryKeyConstraint('referee_member_id', name=op.f('pk_referrals'))
    )
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referrals_referrer_member_id'), ['referrer_member_id'], unique=False)

    op.create_table('activity_awards',
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('activity', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('business_day', sa.Date(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_activity_awards_entry_id_entries')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_activity_awards_member_id_members')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_activity_awards_partner_id_partners')),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_activity_awards'))
    )
    with op.batch_alter_table('activity_awards', schema=None) as batch_op:
        batch_op.create_index('ix_activity_awards_member', ['member_id', 'partner_id', 'activity', 'business_day'], unique=False)

    op.create_table('referral_bonuses',
    sa.Column('referee_member_id', sa.String(length=40), nullable=False),
    sa.Column('referrer_member_id', sa.String(length=40), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('qualifying_entry_id', sa.String(length=40), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('funded_by', sa.String(length=16), nullable=False),
    sa.Column('posted_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_referral_bonuses_entry_id_entries')),
    sa.ForeignKeyConstraint(['qualifying_entry_id'], ['entries.id'], name=op.f('fk_referral_bonuses_qualifying_entry_id_entries')),
    sa.ForeignKeyConstraint(['referee_member_id'], ['referrals.referee_member_id'], name=op.f('fk_referral_bonuses_referee_member_id_referrals')),
    sa.ForeignKeyConstraint(['referrer_member_id'], ['members.id'], name=op.f('fk_referral_bonuses_referrer_member_id_members')),
    sa.PrimaryKeyConstraint('referee_member_id', name=op.f('pk_referral_bonuses')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_referral_bonuses_entry_id')),
    sa.UniqueConstraint('qualifying_entry_id', name=op.f('uq_referral_bonuses_qualifying_entry_id'))
    )


def downgrade() -> None:
    op.drop_table('referral_bonuses')
    with op.batch_alter_table('activity_awards', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_awards_member')

    op.drop_table('activity_awards')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referrals_referrer_member_id'))

    op.drop_table('referrals')
    op.drop_table('issuance_counters')
