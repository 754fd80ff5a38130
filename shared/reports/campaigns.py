"""Campaign effect: points a campaign awarded, and earns during it against the same number of cycles before.

Campaigns are read from the rule documents (the latest version that names a campaign wins);
their windows are cycles (``starts_on`` … ``ends_on``). Before-and-after is a comparison, not
proof of incrementality: the report shows both windows side by side and nothing more.
"""

from __future__ import annotations

from sqlalchemy import func, select

from shared.db.database import Tx
from shared.models import CampaignAward, EarnRuleSet, Entry, ReportCycleCampaigns
from shared.reports.members import earn_window
from shared.reports.period import Period
from shared.reports.split import unrolled, within
from shared.rules.document import RuleSet


def campaigns_of(tx: Tx, scopes: tuple[str, ...]) -> dict[str, tuple[str, object]]:
    """"<scope>:<id>" -> (scope, campaign), the latest version of each."""
    found: dict[str, tuple[str, object]] = {}
    for scope, document in tx.session.execute(
            select(EarnRuleSet.scope, EarnRuleSet.document).where(EarnRuleSet.scope.in_(scopes))
            .order_by(EarnRuleSet.effective_from, EarnRuleSet.version)):
        for campaign in RuleSet.model_validate_json(document).campaigns:
            found[f"{scope}:{campaign.id}"] = (scope, campaign)
    return found


def campaign_points(tx: Tx, campaign: str, partner_id: str, *, rollup: bool = True) -> int:
    """Every point the campaign awarded at the partner: the roll-ups, plus the awards of entries in
    cycles not rolled up yet (all cycles with ``rollup=False``)."""
    award = select(func.coalesce(func.sum(CampaignAward.points), 0)).join(Entry, Entry.id == CampaignAward.entry_id)\
        .where(CampaignAward.campaign == campaign, Entry.partner_id == partner_id)
    if not rollup:
        return int(tx.session.execute(award).scalar_one())
    rolled = tx.session.execute(select(func.coalesce(func.sum(ReportCycleCampaigns.points), 0)).where(
        ReportCycleCampaigns.campaign == campaign, ReportCycleCampaigns.partner_id == partner_id)).scalar_one()
    live = unrolled(tx)
    if live:
        rolled += tx.session.execute(award.where(within(Entry.cycle_date, live))).scalar_one()
    return int(rolled)


def campaign_effect(tx: Tx, partner_id: str, period: Period, *, rollup: bool = True) -> list[dict]:
    """Every campaign of the partner or the network whose window overlaps the period."""
    results = []
    for key, (scope, campaign) in sorted(campaigns_of(tx, (partner_id, "network")).items(),
                                         key=lambda item: (item[1][1].starts_on, item[0])):
        if campaign.ends_on < period.first or campaign.starts_on > period.last:
            continue
        during = Period.clamped(campaign.starts_on, campaign.ends_on)  # an open-ended campaign ends 9999-12-31
        results.append({"campaign": key, "name": campaign.name, "funded_by": campaign.funded_by,
                        "starts_on": campaign.starts_on.isoformat(), "ends_on": campaign.ends_on.isoformat(),
                        "campaign_points": campaign_points(tx, key, partner_id, rollup=rollup),
                        "during": earn_window(tx, partner_id, during, rollup=rollup),
                        "before": earn_window(tx, partner_id, during.before(), rollup=rollup)})
    return results
