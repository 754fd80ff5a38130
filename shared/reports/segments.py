"""Tier and activity-status mix of a partner's linked members, from one GROUP BY.

The mix is of the people linked to the partner at the end of the period (those who withdrew their
consent since counted too: ``member_unlinks``; an erased member only before its erasure), each once
(a merged duplicate is its survivor; a person with several link periods, say one withdrawn and one a
merge moved onto it, is one person), by their tier and activity status when the report is made
(``members.tier`` NULL is the lowest configured tier). Member tiers and statuses are current values,
not history: a report of an old period shows today's mix of the members linked to the partner then.
"""

from __future__ import annotations

from sqlalchemy import func, select

from shared.db.database import Tx
from shared.members.consent import link_periods, linked_at
from shared.models import Member
from shared.reports.period import Period

STATUSES = ("active", "at_risk", "dormant")


def linked_people(partner_id: str, ends):
    """The people linked to the partner at ``ends`` (a link there then, withdrawn since or not), each
    once: ``person``, the member a merged duplicate was merged into, else the member itself."""
    links = link_periods(partner_id)
    return (select(func.coalesce(Member.merged_into, Member.id).label("person")).distinct()
            .join(links, links.c.member_id == Member.id)
            .where(linked_at(links, ends))
            .subquery("linked_people"))


def tier_and_status_mix(tx: Tx, partner_id: str, period: Period) -> dict | None:
    people = linked_people(partner_id, period.ends_at(tx.settings))
    counted: dict[str | None, int] = {}
    statuses = dict.fromkeys(STATUSES, 0)
    for tier, status, members in tx.session.execute(
            select(Member.tier, Member.activity_status, func.count()).join(people, people.c.person == Member.id)
            .group_by(Member.tier, Member.activity_status)):
        counted[tier] = counted.get(tier, 0) + int(members)
        if status in statuses:
            statuses[status] += int(members)
    tiers = None
    if tx.settings.tiers.enabled:
        lowest, by_name = tx.settings.tiers.lowest, {}
        for tier, members in counted.items():
            by_name[tier or lowest] = by_name.get(tier or lowest, 0) + members  # NULL: the lowest tier
        tiers = {level.name: by_name.get(level.name, 0) for level in tx.settings.tiers.levels}
    return {"tiers": tiers, "statuses": statuses}
