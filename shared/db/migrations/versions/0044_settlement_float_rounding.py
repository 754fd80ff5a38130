"""settlements.float_rounding_micro: what a settlement credited a prepaid float for rounding

* settlements.float_rounding_micro BIGINT NOT NULL DEFAULT 0;
* every settled cycle of a partner whose float is enforced now that has prepaid_funding lines and is
  the float's gets it as settlement now books it: the cycle's exact prepaid_funding sum less that sum
  rounded once, half-even, to minor units (as on the statement) — also a cycle whose funding rounds
  to 0 (nothing from the float, nothing by bank, only the credit).

Which settled cycles are the float's: we cannot know when a float was enforced, so it is read from
the settlements (the rule of migration 0045, which records it): a cycle whose settlement took funding
from the float (from_float_minor not 0) or credited it with what the float did not hold (a top-up
``settlement:<cycle>``) is the float's; a cycle whose funding rounds to something other than 0 and
whose settlement shows neither was settled by bank, before the float was enforced, and so was every
cycle before the last such one that shows neither; every cycle after it is the float's.

A statement settles a cycle's prepaid funding rounded once to minor units, but the float was drawn
the exact (micro-unit) amount: each cycle's half-fen of rounding stayed in the float with no record,
so top-ups less the statements' *from float* no longer equalled the float's balance (nor its headroom,
nor what a leaving partner is returned). Settlement now credits the float with the difference
(docs/ledger.md, decision 14), so after settlement the float gave exactly the statements' figures.

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-08 10:00:00.000000
"""
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from alembic import op
import sqlalchemy as sa
from sqlalchemy import text


revision = '0044'
down_revision = '0043'
branch_labels = None
depends_on = None


def _round_micro_to_minor(micro: int) -> int:
    """As shared.money.round_micro_to_minor at this revision: once, half-even, to whole minor units."""
    return int((Decimal(micro) / 1_000_000).to_integral_value(rounding=ROUND_HALF_EVEN))


def _day(value) -> date:
    return date.fromisoformat(str(value)[:10])


def settled_funding(bind, partner: str) -> tuple[dict[date, int], set[date]]:
    """(the partner's exact prepaid_funding per settled cycle, the settled cycles the float evidently
    settled: from_float_minor not 0 or a ``settlement:<cycle>`` credit). (0045 keeps a copy)."""
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
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('float_rounding_micro', sa.BigInteger(), server_default='0', nullable=False))
    bind = op.get_bind()
    update = text("UPDATE settlements SET float_rounding_micro = :amount WHERE cycle_date = :cycle AND party = :party")
    # partners whose float is enforced (few): ix_obligation_lines_prepaid_funding
    for (partner,) in bind.execute(text(
            "SELECT partner_id FROM partner_limits WHERE float_overdraft_minor IS NOT NULL ORDER BY partner_id")).all():
        funding, shown = settled_funding(bind, partner)
        opened = opened_after(funding, shown)
        for day, total in sorted(funding.items()):
            if opened is not None and day < opened and day not in shown:
                continue  # settled by bank, before the float was enforced
            rounding = total - _round_micro_to_minor(total) * 1_000_000
            if rounding:
                bind.execute(update, {"amount": rounding, "party": partner,
                                      "cycle": day if bind.dialect.name == "postgresql" else day.isoformat()})


def downgrade() -> None:
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_column('float_rounding_micro')
