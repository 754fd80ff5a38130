"""Kept totals, repaired from the rows they sum.

Two totals are kept instead of summed on every posting: a capped campaign's awards
(``campaign_totals``) and an enforced float's drawn amount (``partner_limits.float_drawn_micro``).
``pointsnet verify`` checks each against its rows; ``pointsnet repair totals`` sets each that differs
to the sum of its rows, one short transaction per total, after waiting for the postings that may be
adding to it (see ``repair_campaign_total`` and ``repair_float_drawn``). Drift can only come from a
posting of the previous release at the instant a new process first made a campaign's row
(docs/operations.md, upgrades) or from a hand edit.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.access import audit
from shared.db.database import Tx
from shared.partners.limits import kept_floats, repair_float_drawn
from shared.rules.store import kept_campaigns, repair_campaign_total


@dataclass(frozen=True)
class Repaired:
    total: str  # "campaign" (a campaign's awards, in points) or "float" (a float's drawn, in micro-units)
    subject: str  # the campaign key or the partner id
    kept: int
    summed: int


_TOTALS = (("campaign", kept_campaigns, repair_campaign_total), ("float", kept_floats, repair_float_drawn))


def repair_kept_totals(network, actor=None) -> list[Repaired]:
    """Set every kept total that differs from its rows to their sum, each change audited in its
    transaction; returns what was changed."""
    repaired = []
    for total, listed, repair in _TOTALS:
        for subject in network.tx(listed, readonly=True):
            def unit(tx: Tx, total=total, subject=subject, repair=repair) -> Repaired | None:
                changed = repair(tx, subject)
                if changed is None:
                    return None
                audit.record(tx, actor, "kept_total.repaired", subject, total=total, kept=changed[0],
                             summed=changed[1])
                return Repaired(total, subject, *changed)

            if (done := network.tx(unit)) is not None:
                repaired.append(done)
    return repaired
