"""partner limits, float top-ups and terminations

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 03:24:23.791839
"""
from alembic import op
import sqlalchemy as sa
import shared.db.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('float_topups',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('bank_reference', sa.String(length=128), nullable=False),
    sa.Column('recorded_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_float_topups_amount_positive')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_float_topups_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_float_topups')),
    sa.UniqueConstraint('partner_id', 'bank_reference', name=op.f('uq_float_topups_partner_id'))
    )
    with op.batch_alter_table('float_topups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_float_topups_partner_id'), ['partner_id'], unique=False)

    op.create_table('partner_limits',
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('float_overdraft_minor', sa.BigInteger(), nullable=True),
    sa.Column('exposure_limit_minor', sa.BigInteger(), nullable=True),
    sa.Column('exposure_warn_ppm', sa.Integer(), nullable=False),
    sa.Column('updated_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('exposure_limit_minor IS NULL OR exposure_limit_minor >= 0', name=op.f('ck_partner_limits_exposure_limit')),
    sa.CheckConstraint('exposure_warn_ppm BETWEEN 0 AND 1000000', name=op.f('ck_partner_limits_exposure_warn')),
    sa.CheckConstraint('float_overdraft_minor IS NULL OR float_overdraft_minor >= 0', name=op.f('ck_partner_limits_float_overdraft')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_partner_limits_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', name=op.f('pk_partner_limits'))
    )
    with op.batch_alter_table('obligation_lines', schema=None) as batch_op:
        batch_op.create_index('ix_obligation_lines_payer_kind', ['payer', 'kind'], unique=False)
    op.add_column('lots', sa.Column('bought_out_at', shared.db.types.UTCDateTime(), nullable=True))
    op.create_table('terminations',
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('final_cycle', sa.Date(), nullable=False),
    sa.Column('settlement', sa.String(length=16), nullable=False),
    sa.Column('buy_out_rate_ppm', sa.Integer(), nullable=True),
    sa.Column('outstanding_points', sa.BigInteger(), nullable=True),
    sa.Column('buy_out_entry_id', sa.String(length=40), nullable=True),
    sa.Column('recorded_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint("settlement IN ('keep_paying', 'buy_out')", name=op.f('ck_terminations_settlement')),
    sa.CheckConstraint('buy_out_rate_ppm IS NULL OR buy_out_rate_ppm BETWEEN 0 AND 1000000', name=op.f('ck_terminations_buy_out_rate')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_terminations_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', name=op.f('pk_terminations'))
    )


def downgrade() -> None:
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_column('bought_out_at')
    with op.batch_alter_table('obligation_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_obligation_lines_payer_kind')
    op.drop_table('terminations')
    op.drop_table('partner_limits')
    with op.batch_alter_table('float_topups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_float_topups_partner_id'))

    op.drop_table('float_topups')
