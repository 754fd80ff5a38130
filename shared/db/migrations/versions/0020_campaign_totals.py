"""campaign_totals: what a capped campaign gave in all, one row per campaign

* campaign_totals (campaign PRIMARY KEY, points BIGINT, CHECK points >= 0);
* on PostgreSQL a trigger on campaign_awards that adds every inserted award to its campaign's row,
  if it has one (once per statement, over its transition table). On SQLite the journal adds them:
  a trigger there fires per row, and SQLite's one writer runs one release.

A campaign's cap in all was checked by summing every award the campaign had given, once or twice
per posting: an earn under a campaign with 100,000 awards took 106 ms on SQLite and 42 ms on
PostgreSQL, growing with every award. A unit that checks the cap now reads one row. Rows are made
when first needed, from the awards' sum, so nothing is filled in here. The database adds to them,
not the application: during a rolling upgrade processes of the previous release keep writing
awards, and a row they did not add to would stay short for good (and let the cap be exceeded).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 14:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign_totals',
    sa.Column('campaign', sa.String(length=120), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('points >= 0', name=op.f('ck_campaign_totals_points_not_negative')),
    sa.PrimaryKeyConstraint('campaign', name=op.f('pk_campaign_totals'))
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION campaign_awards_add_to_totals() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE campaign_totals t SET points = t.points + a.points
                FROM (SELECT campaign, SUM(points) AS points FROM added GROUP BY campaign) a
                WHERE t.campaign = a.campaign;
                RETURN NULL;
            END $$""")
        op.execute("""
            CREATE TRIGGER campaign_awards_add_to_totals AFTER INSERT ON campaign_awards
            REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION campaign_awards_add_to_totals()""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER campaign_awards_add_to_totals ON campaign_awards")
        op.execute("DROP FUNCTION campaign_awards_add_to_totals()")
    op.drop_table('campaign_totals')
