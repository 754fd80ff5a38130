"""earn rule sets and campaign awards

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:24:09.942859
"""
from alembic import op
import sqlalchemy as sa
import shared.db.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('earn_rule_sets',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_from', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('created_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_earn_rule_sets')),
    sa.UniqueConstraint('scope', 'version', name=op.f('uq_earn_rule_sets_scope'))
    )
    op.create_table('campaign_awards',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('campaign', sa.String(length=120), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_campaign_awards_entry_id_entries')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_campaign_awards_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_awards'))
    )
    with op.batch_alter_table('campaign_awards', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_awards_campaign_member', ['campaign', 'member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_awards_entry_id'), ['entry_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('campaign_awards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_awards_entry_id'))
        batch_op.drop_index('ix_campaign_awards_campaign_member')

    op.drop_table('campaign_awards')
    op.drop_table('earn_rule_sets')
