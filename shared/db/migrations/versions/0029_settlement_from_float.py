"""settlements.from_float_minor: the part of a party's net settled from prepaid floats, kept

* settlements.from_float_minor BIGINT NOT NULL DEFAULT 0;
* existing rows get it as ``pointsnet clearing list`` computed it until now: for a partner whose
  float is enforced, the cycle's prepaid_funding sum, rounded once per cycle and payer half-even
  (as on the statement); for the network, minus the cycle's total of those;
* a row still ``due`` whose by-bank amount (net_minor + from_float_minor) is 0 becomes ``nothing_due``.

A partner with a prepaid float pays its prepaid funding in advance through top-ups, so that part of
its net is settled from the float and only net + from float moves by bank (docs/settlement-files.md,
"Finance"). Yet the settlement's status came from the net alone: a net wholly settled from the float
stayed ``due`` (and overdue, chased for a bank payment nobody owed), and a payment was recorded as
``paid`` when the network was the one paying the partner. The list recomputed "from float" from the
partners with a float *today*, so an old cycle's changed when a float was enforced later. Settlement
now fixes the amount when it settles a cycle and the status follows the by-bank amount. Rows already
``paid`` or ``received`` keep their status and bank reference.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05 10:00:00.000000
"""
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal

from alembic import op
import sqlalchemy as sa
from sqlalchemy import text


revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

NETWORK = "network"


def _round_micro_to_minor(micro: int) -> int:
    """As shared.money.round_micro_to_minor at this revision: once, half-even, to whole minor units."""
    return int((Decimal(micro) / 1_000_000).to_integral_value(rounding=ROUND_HALF_EVEN))


def upgrade() -> None:
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('from_float_minor', sa.BigInteger(), server_default='0', nullable=False))
    bind = op.get_bind()
    # settled cycles only; per partner whose float is enforced (few): ix_obligation_lines_prepaid_funding
    drawn = bind.execute(text("""
        SELECT o.cycle_date, o.payer, SUM(o.amount_micro) FROM obligation_lines o
        WHERE o.kind = 'prepaid_funding'
          AND o.payer IN (SELECT partner_id FROM partner_limits WHERE float_overdraft_minor IS NOT NULL)
          AND EXISTS (SELECT 1 FROM settlements s WHERE s.cycle_date = o.cycle_date AND s.party = o.payer)
        GROUP BY o.cycle_date, o.payer""")).all()
    per_party: dict = {}
    network: dict = defaultdict(int)
    for cycle, payer, total in drawn:
        amount = _round_micro_to_minor(int(total))
        if amount:
            per_party[(cycle, payer)] = amount
            network[cycle] -= amount
    per_party.update({(cycle, NETWORK): amount for cycle, amount in network.items() if amount})
    update = text("UPDATE settlements SET from_float_minor = :amount WHERE cycle_date = :cycle AND party = :party")
    for (cycle, party), amount in sorted(per_party.items()):
        bind.execute(update, {"amount": amount, "cycle": cycle, "party": party})
    op.execute("UPDATE settlements SET status = 'nothing_due' "
               "WHERE status = 'due' AND net_minor + from_float_minor = 0")


def downgrade() -> None:
    # statuses set to nothing_due stay so: nothing was owed by bank
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_column('from_float_minor')
