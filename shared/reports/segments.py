"""Tier and activity-status mix of a partner's linked members, from one GROUP BY each.

The mix is of the members linked to the partner at the end of the period (those who withdrew their
consent since counted too: ``member_unlinks``), by their tier and
activity status when the report is made (``members.tier`` NULL is the lowest configured tier).
Member tiers and statuses are current values, not history: a report of an old period shows
today's mix of the members linked to the partner then.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

from shared.db.database import Tx
from shared.members.consent import link_periods
from shared.models import Member
from shared.reports.period import Period


def tier_and_status_mix(tx: Tx, partner_id: str, period: Period) -> dict | None:
    # linked at the end of the period: a link there now, or one withdrawn since (``member_unlinks``)
    links, ends = link_periods(partner_id), period.ends_at(tx.settings)
    linked_then = (links.c.linked_at < ends, or_(links.c.unlinked_at.is_(None), links.c.unlinked_at >= ends))
    if not tx.settings.tiers.enabled:
        tiers = None
    else:
        lowest = tx.settings.tiers.lowest
        counted: dict[str, int] = {}
        for tier, members in tx.session.execute(
                select(Member.tier, func.count()).join(links, links.c.member_id == Member.id)
                .where(*linked_then, Member.merged_into.is_(None))
                .group_by(Member.tier)):
            counted[tier or lowest] = counted.get(tier or lowest, 0) + int(members)  # NULL: the lowest tier
        known = [level.name for level in tx.settings.tiers.levels]
        tiers = {name: counted.get(name, 0) for name in known}
    statuses = dict(tx.session.execute(
        select(Member.activity_status, func.count()).join(links, links.c.member_id == Member.id)
        .where(*linked_then, Member.merged_into.is_(None))
        .group_by(Member.activity_status)).all())
    return {"tiers": tiers,
            "statuses": {status: int(statuses.get(status, 0)) for status in ("active", "at_risk", "dormant")}}
