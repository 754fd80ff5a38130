"""partners.name_key: one name per partner, compared without case, end spaces or Unicode form

Partner names were unique only as typed: ``airlink `` was registered beside ``AirLink`` (stored
trimmed, ``airlink``), and operators saw two partners that look the same. ``name_key`` holds the
SHA-256 (hex) of the name NFKC-normalised, case-folded, NFKC-normalised again and trimmed
(``shared/partners/names.py``), under a unique constraint; onboarding refuses a second partner with
the same key as it refused an exact duplicate (422 ``validation_failed``).

A database that already holds partners whose names are one name by that rule is NOT changed: the
upgrade stops before any change with an error naming every such group (ids and names), and the
previous release goes on working on the database. Rename all but one partner of each group in the
database (``UPDATE partners SET name = '...' WHERE id = '...'``; the name is only what operators
and reports show: ids, keys and the ledger do not change), then run ``pointsnet db upgrade`` again.

The key is computed here by a frozen copy of the rule of this release, so a later change to
``shared/partners/names.py`` comes with a migration of its own. The downgrade drops the column.

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-06 12:00:00.000000
"""
import hashlib
import unicodedata

from alembic import op
import sqlalchemy as sa
from sqlalchemy import text

from shared.db.migrate import MigrationStopped


revision = '0041'
down_revision = '0040'
branch_labels = None
depends_on = None


def _name_key(name: str) -> str:
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold()).strip()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


class DuplicatePartnerNames(MigrationStopped):
    """One line from `pointsnet db upgrade` (exit 2), nothing changed."""


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(text("SELECT id, name FROM partners ORDER BY id")).all()
    groups: dict[str, list[tuple[str, str]]] = {}
    for partner_id, name in rows:
        groups.setdefault(_name_key(name), []).append((partner_id, name))
    clashes = [group for group in groups.values() if len(group) > 1]
    if clashes:
        named = "; ".join(", ".join(f"{partner_id} {name!r}" for partner_id, name in group) for group in clashes)
        raise DuplicatePartnerNames(
            f"migration 0041 stopped, nothing changed: {len(clashes)} group(s) of partners whose names differ "
            f"only in case, end spaces or Unicode form: {named}. Rename all but one partner of each group "
            f"(UPDATE partners SET name = ... WHERE id = ...), then run the upgrade again")
    # Added NOT NULL with a default of '' and filled at once: SQLite adds such a column in place. The
    # partners table is not rebuilt (on SQLite a rebuild would drop a table that every partner's rows
    # refer to); so SQLite keeps the '' default in its table definition, which no insert of the
    # network uses (the model computes the key) and which the unique index makes refuse a second time.
    op.add_column('partners', sa.Column('name_key', sa.String(length=64), nullable=False, server_default=''))
    for partner_id, name in rows:
        connection.execute(text("UPDATE partners SET name_key = :key WHERE id = :id"),
                           {"key": _name_key(name), "id": partner_id})
    if connection.dialect.name == "postgresql":
        op.alter_column('partners', 'name_key', server_default=None)
    op.create_index(op.f('ix_partners_name_key'), 'partners', ['name_key'], unique=True)


def downgrade() -> None:
    op.drop_index(op.f('ix_partners_name_key'), table_name='partners')
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE partners DROP COLUMN name_key")  # in place (SQLite 3.35 and later)
    else:
        op.drop_column('partners', 'name_key')
