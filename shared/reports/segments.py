"""Tier and activity-status mix of a partner's linked members, from one GROUP BY each.

The mix is of the members linked to the partner at the end of the period, by their tier and
activity status when the report is made (``members.tier`` NULL is the lowest configured tier).
Member tiers and statuses are current values, not history: a report of an old period shows
today's mix of the members linked to the partner then.
"""

from __future__ import annotations

from sqlalchemy import func, select

from shared.db.database import Tx
from shared.models import Member, MemberLink
from shared.reports.period import Period


def tier_and_status_mix(tx: Tx, partner_id: str, period: Period) -> dict | None:
    if not tx.settings.tiers.enabled:
        tiers = None
    else:
        lowest = tx.settings.tiers.lowest
        counted: dict[str, int] = {}
        for tier, members in tx.session.execute(
                select(Member.tier, func.count())
                .join(MemberLink, MemberLink.member_id == Member.id)
                .where(MemberLink.partner_id == partner_id, MemberLink.linked_at < period.ends_at(tx.settings),
                       Member.merged_into.is_(None))
                .group_by(Member.tier)):
            counted[tier or lowest] = counted.get(tier or lowest, 0) + int(members)  # NULL: the lowest tier
        known = [level.name for level in tx.settings.tiers.levels]
        tiers = {name: counted.get(name, 0) for name in known}
    statuses = dict(tx.session.execute(
        select(Member.activity_status, func.count())
        .join(MemberLink, MemberLink.member_id == Member.id)
        .where(MemberLink.partner_id == partner_id, MemberLink.linked_at < period.ends_at(tx.settings),
               Member.merged_into.is_(None))
        .group_by(Member.activity_status)).all())
    return {"tiers": tiers,
            "statuses": {status: int(statuses.get(status, 0)) for status in ("active", "at_risk", "dormant")}}
