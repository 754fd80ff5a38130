"""initial ledger schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 09:08:19.773083
"""
from alembic import op
import sqlalchemy as sa
import shared.db.types


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.CheckConstraint("kind IN ('member', 'member_held', 'partner_issued', 'partner_redeemed', 'network')", name=op.f('ck_accounts_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts'))
    )
    op.create_table('cycles',
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('closed_at', shared.db.types.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('open', 'closed')", name=op.f('ck_cycles_status')),
    sa.PrimaryKeyConstraint('cycle_date', name=op.f('pk_cycles'))
    )
    op.create_table('partners',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f('ck_partners_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partners')),
    sa.UniqueConstraint('name', name=op.f('uq_partners_name'))
    )
    op.create_table('contracts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('billing', sa.String(length=16), nullable=False),
    sa.Column('point_value_micro', sa.BigInteger(), nullable=False),
    sa.Column('issuance_fee_micro', sa.BigInteger(), nullable=False),
    sa.Column('redemption_fee_ppm', sa.Integer(), nullable=False),
    sa.Column('breakage_share_ppm', sa.Integer(), nullable=False),
    sa.Column('base_rate_micro', sa.BigInteger(), nullable=False),
    sa.Column('created_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint("billing IN ('postpaid', 'prepaid')", name=op.f('ck_contracts_billing')),
    sa.CheckConstraint('base_rate_micro >= 0', name=op.f('ck_contracts_base_rate')),
    sa.CheckConstraint('breakage_share_ppm BETWEEN 0 AND 1000000', name=op.f('ck_contracts_breakage_share')),
    sa.CheckConstraint('issuance_fee_micro >= 0', name=op.f('ck_contracts_issuance_fee')),
    sa.CheckConstraint('point_value_micro >= 0', name=op.f('ck_contracts_point_value')),
    sa.CheckConstraint('redemption_fee_ppm BETWEEN 0 AND 1000000', name=op.f('ck_contracts_redemption_fee')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_contracts_version')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_contracts_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contracts')),
    sa.UniqueConstraint('partner_id', 'effective_from', name='uq_contracts_partner_effective'),
    sa.UniqueConstraint('partner_id', 'version', name=op.f('uq_contracts_partner_id'))
    )
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contracts_partner_id'), ['partner_id'], unique=False)

    op.create_table('idempotency_records',
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('request', sa.Text(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('created_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_idempotency_records_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'key', name=op.f('pk_idempotency_records'))
    )
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_records_created_at'), ['created_at'], unique=False)

    op.create_table('members',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('available', sa.BigInteger(), nullable=False),
    sa.Column('held', sa.BigInteger(), nullable=False),
    sa.Column('enrolled_by', sa.String(length=40), nullable=True),
    sa.Column('phone_ct', sa.Text(), nullable=True),
    sa.Column('phone_bidx', sa.String(length=80), nullable=True),
    sa.Column('email_ct', sa.Text(), nullable=True),
    sa.Column('email_bidx', sa.String(length=80), nullable=True),
    sa.Column('name_ct', sa.Text(), nullable=True),
    sa.Column('created_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('erased_at', shared.db.types.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('active', 'erased')", name=op.f('ck_members_status')),
    sa.CheckConstraint('available >= 0', name=op.f('ck_members_available_not_negative')),
    sa.CheckConstraint('held >= 0', name=op.f('ck_members_held_not_negative')),
    sa.ForeignKeyConstraint(['enrolled_by'], ['partners.id'], name=op.f('fk_members_enrolled_by_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members')),
    sa.UniqueConstraint('email_bidx', name=op.f('uq_members_email_bidx')),
    sa.UniqueConstraint('phone_bidx', name=op.f('uq_members_phone_bidx'))
    )
    op.create_table('entries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=True),
    sa.Column('member_id', sa.String(length=40), nullable=True),
    sa.Column('reference', sa.String(length=128), nullable=True),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('posted_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('occurred_at', shared.db.types.UTCDateTime(), nullable=True),
    sa.Column('original_entry_id', sa.String(length=40), nullable=True),
    sa.Column('hold_id', sa.String(length=40), nullable=True),
    sa.Column('request', sa.Text(), nullable=False),
    sa.Column('result', sa.Text(), nullable=False),
    sa.CheckConstraint("kind IN ('earn', 'bonus', 'burn', 'hold', 'capture', 'void', 'hold_expiry', 'reversal', 'expiry', 'adjustment')", name=op.f('ck_entries_kind')),
    sa.CheckConstraint('points > 0', name=op.f('ck_entries_points_positive')),
    sa.ForeignKeyConstraint(['cycle_date'], ['cycles.cycle_date'], name=op.f('fk_entries_cycle_date_cycles')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_entries_member_id_members')),
    sa.ForeignKeyConstraint(['original_entry_id'], ['entries.id'], name=op.f('fk_entries_original_entry_id_entries')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_entries_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entries')),
    sa.UniqueConstraint('partner_id', 'reference', name='uq_entries_partner_reference')
    )
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entries_cycle_date'), ['cycle_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_entries_hold_id'), ['hold_id'], unique=False)
        batch_op.create_index('ix_entries_member_posted', ['member_id', 'posted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_entries_original_entry_id'), ['original_entry_id'], unique=False)
        batch_op.create_index('ix_entries_partner_posted', ['partner_id', 'posted_at'], unique=False)

    op.create_table('link_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('issued_by', sa.String(length=40), nullable=False),
    sa.Column('expires_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('used_by', sa.String(length=40), nullable=True),
    sa.Column('used_at', shared.db.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['issued_by'], ['partners.id'], name=op.f('fk_link_tokens_issued_by_partners')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_link_tokens_member_id_members')),
    sa.ForeignKeyConstraint(['used_by'], ['partners.id'], name=op.f('fk_link_tokens_used_by_partners')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_link_tokens'))
    )
    op.create_table('member_links',
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('customer_ref', sa.String(length=128), nullable=True),
    sa.Column('linked_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_links_member_id_members')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_member_links_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'member_id', name=op.f('pk_member_links')),
    sa.UniqueConstraint('partner_id', 'customer_ref', name='uq_member_links_customer_ref')
    )
    with op.batch_alter_table('member_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_links_member_id'), ['member_id'], unique=False)

    op.create_table('holds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('captured_points', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('resolved_entry_id', sa.String(length=40), nullable=True),
    sa.Column('resolved_at', shared.db.types.UTCDateTime(), nullable=True),
    sa.CheckConstraint("(status = 'open') = (resolved_entry_id IS NULL)", name=op.f('ck_holds_resolved_once')),
    sa.CheckConstraint("status IN ('open', 'captured', 'voided', 'expired')", name=op.f('ck_holds_status')),
    sa.CheckConstraint('captured_points >= 0 AND captured_points <= points', name=op.f('ck_holds_captured_bounds')),
    sa.CheckConstraint('points > 0', name=op.f('ck_holds_points_positive')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_holds_entry_id_entries')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_holds_member_id_members')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_holds_partner_id_partners')),
    sa.ForeignKeyConstraint(['resolved_entry_id'], ['entries.id'], name=op.f('fk_holds_resolved_entry_id_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holds')),
    sa.UniqueConstraint('resolved_entry_id', name=op.f('uq_holds_resolved_entry_id'))
    )
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_holds_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_holds_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_holds_partner_id'), ['partner_id'], unique=False)

    op.create_table('lots',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('funder_partner_id', sa.String(length=40), nullable=True),
    sa.Column('billing', sa.String(length=16), nullable=False),
    sa.Column('contract_id', sa.String(length=40), nullable=True),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('reserved', sa.BigInteger(), nullable=False),
    sa.Column('issued_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint("(billing = 'network' AND funder_partner_id IS NULL AND contract_id IS NULL) OR (billing <> 'network' AND funder_partner_id IS NOT NULL AND contract_id IS NOT NULL)", name=op.f('ck_lots_one_funder')),
    sa.CheckConstraint("billing IN ('postpaid', 'prepaid', 'network')", name=op.f('ck_lots_billing')),
    sa.CheckConstraint('points > 0', name=op.f('ck_lots_points_positive')),
    sa.CheckConstraint('remaining >= 0 AND remaining <= points', name=op.f('ck_lots_remaining_bounds')),
    sa.CheckConstraint('reserved >= 0 AND reserved <= remaining', name=op.f('ck_lots_reserved_bounds')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_lots_contract_id_contracts')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_lots_entry_id_entries')),
    sa.ForeignKeyConstraint(['funder_partner_id'], ['partners.id'], name=op.f('fk_lots_funder_partner_id_partners')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_lots_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lots'))
    )
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lots_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index('ix_lots_expires', ['expires_at'], unique=False)
        batch_op.create_index('ix_lots_member_order', ['member_id', 'expires_at', 'issued_at', 'id'], unique=False)

    op.create_table('transfers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('debit_account', sa.String(length=80), nullable=False),
    sa.Column('credit_account', sa.String(length=80), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('debit_account <> credit_account', name=op.f('ck_transfers_distinct_accounts')),
    sa.CheckConstraint('points > 0', name=op.f('ck_transfers_points_positive')),
    sa.ForeignKeyConstraint(['credit_account'], ['accounts.id'], name=op.f('fk_transfers_credit_account_accounts')),
    sa.ForeignKeyConstraint(['debit_account'], ['accounts.id'], name=op.f('fk_transfers_debit_account_accounts')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_transfers_entry_id_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transfers'))
    )
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfers_credit_account'), ['credit_account'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_debit_account'), ['debit_account'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_entry_id'), ['entry_id'], unique=False)

    op.create_table('hold_lots',
    sa.Column('hold_id', sa.String(length=40), nullable=False),
    sa.Column('lot_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('points > 0', name=op.f('ck_hold_lots_points_positive')),
    sa.ForeignKeyConstraint(['hold_id'], ['holds.id'], name=op.f('fk_hold_lots_hold_id_holds')),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], name=op.f('fk_hold_lots_lot_id_lots')),
    sa.PrimaryKeyConstraint('hold_id', 'lot_id', name=op.f('pk_hold_lots'))
    )
    with op.batch_alter_table('hold_lots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hold_lots_lot_id'), ['lot_id'], unique=False)

    op.create_table('lot_consumptions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('lot_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('points <> 0', name=op.f('ck_lot_consumptions_points_nonzero')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_lot_consumptions_entry_id_entries')),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], name=op.f('fk_lot_consumptions_lot_id_lots')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lot_consumptions')),
    sa.UniqueConstraint('entry_id', 'seq', name='uq_lot_consumptions_entry_seq')
    )
    with op.batch_alter_table('lot_consumptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lot_consumptions_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lot_consumptions_lot_id'), ['lot_id'], unique=False)

    op.create_table('obligation_lines',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('cycle_date', sa.Date(), nullable=False),
    sa.Column('payer', sa.String(length=40), nullable=False),
    sa.Column('payee', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('amount_micro', sa.BigInteger(), nullable=False),
    sa.Column('contract_id', sa.String(length=40), nullable=True),
    sa.Column('lot_id', sa.String(length=40), nullable=True),
    sa.Column('original_line_id', sa.String(length=40), nullable=True),
    sa.CheckConstraint("kind IN ('issuance_fee', 'prepaid_funding', 'redemption', 'redemption_fee', 'breakage_refund')", name=op.f('ck_obligation_lines_kind')),
    sa.CheckConstraint('payer <> payee', name=op.f('ck_obligation_lines_payer_is_not_payee')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_obligation_lines_contract_id_contracts')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_obligation_lines_entry_id_entries')),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], name=op.f('fk_obligation_lines_lot_id_lots')),
    sa.ForeignKeyConstraint(['original_line_id'], ['obligation_lines.id'], name=op.f('fk_obligation_lines_original_line_id_obligation_lines')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_obligation_lines'))
    )
    with op.batch_alter_table('obligation_lines', schema=None) as batch_op:
        batch_op.create_index('ix_obligation_lines_cycle', ['cycle_date', 'payer', 'payee', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_obligation_lines_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_obligation_lines_original_line_id'), ['original_line_id'], unique=False)


    accounts = sa.table("accounts", sa.column("id", sa.String), sa.column("kind", sa.String))
    op.bulk_insert(accounts, [
        {"id": name, "kind": "network"}
        for name in ("network:expired", "network:promotions", "network:adjustments")
    ])

def downgrade() -> None:
    with op.batch_alter_table('obligation_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_obligation_lines_original_line_id'))
        batch_op.drop_index(batch_op.f('ix_obligation_lines_entry_id'))
        batch_op.drop_index('ix_obligation_lines_cycle')

    op.drop_table('obligation_lines')
    with op.batch_alter_table('lot_consumptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lot_consumptions_lot_id'))
        batch_op.drop_index(batch_op.f('ix_lot_consumptions_entry_id'))

    op.drop_table('lot_consumptions')
    with op.batch_alter_table('hold_lots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hold_lots_lot_id'))

    op.drop_table('hold_lots')
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfers_entry_id'))
        batch_op.drop_index(batch_op.f('ix_transfers_debit_account'))
        batch_op.drop_index(batch_op.f('ix_transfers_credit_account'))

    op.drop_table('transfers')
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_index('ix_lots_member_order')
        batch_op.drop_index('ix_lots_expires')
        batch_op.drop_index(batch_op.f('ix_lots_entry_id'))

    op.drop_table('lots')
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_holds_partner_id'))
        batch_op.drop_index(batch_op.f('ix_holds_member_id'))
        batch_op.drop_index(batch_op.f('ix_holds_expires_at'))

    op.drop_table('holds')
    with op.batch_alter_table('member_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_links_member_id'))

    op.drop_table('member_links')
    op.drop_table('link_tokens')
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index('ix_entries_partner_posted')
        batch_op.drop_index(batch_op.f('ix_entries_original_entry_id'))
        batch_op.drop_index('ix_entries_member_posted')
        batch_op.drop_index(batch_op.f('ix_entries_hold_id'))
        batch_op.drop_index(batch_op.f('ix_entries_cycle_date'))

    op.drop_table('entries')
    op.drop_table('members')
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_records_created_at'))

    op.drop_table('idempotency_records')
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contracts_partner_id'))

    op.drop_table('contracts')
    op.drop_table('partners')
    op.drop_table('cycles')
    op.drop_table('accounts')
