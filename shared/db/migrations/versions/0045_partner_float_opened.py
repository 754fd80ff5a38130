"""partner_limits.float_opened_cycle and float_opened_micro: where a float was enforced from

* partner_limits.float_opened_cycle DATE NULL: the cycle open when the float was (last) enforced;
* partner_limits.float_opened_micro BIGINT NOT NULL DEFAULT 0: the partner's prepaid_funding lines of
  the cycles before it that no settlement took from the float (settled by bank);
* partners whose float is enforced now get them by the rule of migration 0044 (read from the
  settlements, as we cannot know when a float was enforced): the float answers the cycles after the
  last one settled by bank (funding that rounds to something, and neither from_float_minor nor a
  ``settlement:<cycle>`` credit nor a rounding credit in its settlement) and the cycles it settled
  before that; none settled by bank: every cycle (float_opened_cycle NULL). A float enforced in the
  middle of a run of cycles settled by bank is taken to be enforced after the last of them.

A float first enforced after cycles were already settled by bank counted those cycles as drawn (the
kept total is every prepaid_funding line): its balance was short of them, issuance was refused early
(float_exhausted) and a leaving partner was paid back too little. The float now counts only the lines
since it was enforced (docs/ledger.md, decision 14). A float not enforced now gets its baseline when
it is enforced again (``limits.set_limits``).

Revision ID: 0045
Revises: 0044
Create Date: 2026-12-08 12:00:00.000000
"""
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from alembic import op
import sqlalchemy as sa
from sqlalchemy import text


revision = '0045'
down_revision = '0044'
branch_labels = None
depends_on = None


# the rule of migration 0044, frozen here as it is there
def _round_micro_to_minor(micro: int) -> int:
    """As shared.money.round_micro_to_minor at this revision: once, half-even, to whole minor units."""
    return int((Decimal(micro) / 1_000_000).to_integral_value(rounding=ROUND_HALF_EVEN))


def _day(value) -> date:
    return date.fromisoformat(str(value)[:10])


def settled_funding(bind, partner: str) -> tuple[dict[date, int], set[date]]:
    """(the partner's exact prepaid_funding per settled cycle, the settled cycles the float evidently
    settled: from_float_minor not 0 or a ``settlement:<cycle>`` credit). As migration 0044 reads them."""
    funding = {_day(day): int(total) for day, total in bind.execute(text("""
        SELECT o.cycle_date, SUM(o.amount_micro) FROM obligation_lines o
        WHERE o.kind = 'prepaid_funding' AND o.payer = :p
          AND EXISTS (SELECT 1 FROM settlements s WHERE s.cycle_date = o.cycle_date AND s.party = o.payer)
        GROUP BY o.cycle_date"""), {"p": partner}).all()}
    shown = {_day(day) for (day,) in bind.execute(text(
        "SELECT cycle_date FROM settlements WHERE party = :p AND from_float_minor <> 0"), {"p": partner}).all()}
    for (reference,) in bind.execute(text("SELECT bank_reference FROM float_topups WHERE partner_id = :p "
                                          "AND bank_reference LIKE 'settlement:%'"), {"p": partner}).all():
        try:
            shown.add(date.fromisoformat(str(reference)[len("settlement:"):]))
        except ValueError:
            pass
    return funding, shown


def opened_after(funding: dict[date, int], shown: set[date]) -> date | None:
    """The first cycle after the last one settled by bank (funding that rounds to something, and no sign
    of the float in its settlement), or None where there is none: the cycles the float answers from."""
    by_bank = [day for day, total in funding.items() if _round_micro_to_minor(total) and day not in shown]
    return max(by_bank) + timedelta(days=1) if by_bank else None


def upgrade() -> None:
    with op.batch_alter_table('partner_limits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('float_opened_cycle', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('float_opened_micro', sa.BigInteger(), server_default='0', nullable=False))
    bind = op.get_bind()
    for (partner,) in bind.execute(text(
            "SELECT partner_id FROM partner_limits WHERE float_overdraft_minor IS NOT NULL ORDER BY partner_id")).all():
        funding, shown = settled_funding(bind, partner)
        shown |= {_day(day) for (day,) in bind.execute(text(
            "SELECT cycle_date FROM settlements WHERE party = :p AND float_rounding_micro <> 0"), {"p": partner})}
        opened = opened_after(funding, shown)
        if opened is None:
            continue
        # the cycles before it not settled yet (settled out of order) are settled by bank too
        before = bind.execute(text(
            "SELECT cycle_date, SUM(amount_micro) FROM obligation_lines WHERE kind = 'prepaid_funding' "
            "AND payer = :p AND cycle_date < :d GROUP BY cycle_date"),
            {"p": partner, "d": opened if bind.dialect.name == "postgresql" else opened.isoformat()}).all()
        not_floats = sum(int(total) for day, total in before if _day(day) not in shown)
        bind.execute(text("UPDATE partner_limits SET float_opened_cycle = :d, float_opened_micro = :m "
                          "WHERE partner_id = :p"),
                     {"p": partner, "m": not_floats,
                      "d": opened if bind.dialect.name == "postgresql" else opened.isoformat()})


def downgrade() -> None:
    with op.batch_alter_table('partner_limits', schema=None) as batch_op:
        batch_op.drop_column('float_opened_micro')
        batch_op.drop_column('float_opened_cycle')
