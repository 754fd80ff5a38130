"""member_unlinks: a member's consent withdrawn from one partner, recorded

* member_unlinks (id, partner_id, member_id, linked_at, unlinked_at, requested_by, reason): written when a
  partner's link to a member goes (``POST /v1/members/{member_id}/unlink``, the member at the partner's
  till or in its app; ``pointsnet members unlink``, the member asked the network). ``linked_at`` is the
  link's own, so that a report of a past period counts the members linked to the partner then, whether
  or not they are still (shared/members/consent.py). No personal data: the partner's customer_ref goes
  with the link, ``reason`` is the operator's reference.

No consent was ever withdrawn before this revision: nothing to fill. The downgrade drops the table, and
with it the record of each withdrawal (the links stay gone).

Revision ID: 0046
Revises: 0045
Create Date: 2026-12-09 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

import shared.db.types


revision = '0046'
down_revision = '0045'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('member_unlinks',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('linked_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('unlinked_at', shared.db.types.UTCDateTime(), nullable=False),
    sa.Column('requested_by', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.CheckConstraint("requested_by IN ('partner', 'operator')", name=op.f('ck_member_unlinks_requested_by')),
    sa.CheckConstraint('unlinked_at >= linked_at', name=op.f('ck_member_unlinks_after_linking')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_unlinks_member_id_members')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_member_unlinks_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_unlinks'))
    )
    with op.batch_alter_table('member_unlinks', schema=None) as batch_op:
        batch_op.create_index('ix_member_unlinks_partner_id_linked_at', ['partner_id', 'linked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_unlinks_member_id'), ['member_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('member_unlinks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_unlinks_member_id'))
        batch_op.drop_index('ix_member_unlinks_partner_id_linked_at')
    op.drop_table('member_unlinks')
