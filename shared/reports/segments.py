"""Tier and status mix of a partner's members: the place for it, empty until member tiers exist.

Member tiers (and the status segments built on them: active, positive, ordinary, sleeping) are
being added to the network separately. When they land, this function returns, for the
partner's members at the end of the period, ``{"tiers": {tier: members}, "statuses": {status:
members}}`` from one GROUP BY; until then it returns None and the reports show "not available"
rather than numbers nobody can check.
"""

from __future__ import annotations

from shared.db.database import Tx
from shared.reports.period import Period


def tier_and_status_mix(tx: Tx, partner_id: str, period: Period) -> dict | None:
    return None
