"""partner keys and request nonces

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:23:44.850814
"""
from alembic import op
import sqlalchemy as sa
import shared.db.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('request_nonces',
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=128), nullable=False),
    sa.Column('seen_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key_id', 'nonce', name=op.f('pk_request_nonces'))
    )
    with op.batch_alter_table('request_nonces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_nonces_seen_at'), ['seen_at'], unique=False)

    op.create_table('partner_keys',
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', shared.db.types.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('active', 'revoked')", name=op.f('ck_partner_keys_status')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_partner_keys_partner_id_partners')),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_partner_keys'))
    )
    with op.batch_alter_table('partner_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_keys_partner_id'), ['partner_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('partner_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partner_keys_partner_id'))

    op.drop_table('partner_keys')
    with op.batch_alter_table('request_nonces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_nonces_seen_at'))

    op.drop_table('request_nonces')
