"""lots.merged_from: the member a lot was issued to, once a merge moved it

* lots.merged_from (nullable): a merge sets it (to the member the lot was issued to) as it moves the
  duplicate's lots to the survivor; the lot's leaf encodes it in place of the current member;
* lots already moved by a merge get it from their entry (the member the entry credited);
* ix_lots_merged_from_set: the moved lots, for verify's check of who holds them.

A lot's sealed leaf (docs/verifiable-ledger.md, the ``L`` record) names its member. A merge moved the
duplicate's lots to the survivor by rewriting that member, so an honest ledger then failed ``pointsnet
verify`` (``leaf_hash_mismatch``) and its partners' inclusion proofs no longer matched their leaves. The
leaf now names the member the lot was issued to, which no later change touches; for every lot no merge
moved that is its member, as before, so no leaf sealed so far changes. The backfill restores the
member that lots already moved were sealed with (a lot moved before the sealer reached it, within the
sealer's minute, was sealed with the survivor: verify names such a leaf; operations.md says why).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-04 20:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('lots', sa.Column('merged_from', sa.String(length=40), nullable=True))  # no table rebuild
    # only the lots a merge moved (verify checks who holds them): nothing to build on most networks
    op.create_index('ix_lots_merged_from_set', 'lots', ['merged_from'], unique=False,
                    sqlite_where=sa.text('merged_from IS NOT NULL'), postgresql_where=sa.text('merged_from IS NOT NULL'))
    # the lots credited to members since merged into others: through the entries of those members
    op.execute("""
        UPDATE lots SET merged_from = (SELECT e.member_id FROM entries e WHERE e.id = lots.entry_id)
        WHERE entry_id IN (SELECT e.id FROM entries e JOIN members m ON m.id = e.member_id
                           WHERE m.merged_into IS NOT NULL)
          AND member_id <> (SELECT e.member_id FROM entries e WHERE e.id = lots.entry_id)""")


def downgrade() -> None:
    op.drop_index('ix_lots_merged_from_set', table_name='lots')
    # plain ALTER TABLE (SQLite 3.35+ too): a batch rebuild of lots would lose its expression index
    op.execute("ALTER TABLE lots DROP COLUMN merged_from")
