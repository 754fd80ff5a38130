"""Campaign effect: points a campaign awarded, and earns during it against the same number of cycles before.

Campaigns are read from the rule documents (the latest version that names a campaign wins; a
version superseded before it took effect never applied and is not read). A campaign applies to an
earn by its ``occurred_at`` (the network day the purchase was made), not by when it was posted, so
its windows (``starts_on`` … ``ends_on``, and as many days before) count earns by that day too: an
earn posted after the campaign ended but made during it (late, within the occurred_at window) is
one of its earns. Before-and-after is a comparison, not proof of incrementality: the report shows
both windows side by side and nothing more.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Integer, and_, case, cast, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.db.database import Tx
from shared.models import CampaignAward, EarnRuleSet, Entry, NetworkSetting, ReportCycleCampaigns
from shared.reports.members import earn_window
from shared.reports.period import EARLIEST, LATEST, Period
from shared.reports.split import unrolled, within
from shared.reports.sql import exact_sum, exact_total, purchase_amount
from shared.rules.document import RuleSet
from shared.rules.store import superseded_by


def campaigns_of(tx: Tx, scopes: tuple[str, ...], until: datetime) -> dict[str, tuple[str, object]]:
    """"<scope>:<id>" -> (scope, campaign), the latest version of each among the versions that took
    effect before ``until`` (a report's end: a version saved later, reusing the id for other dates,
    leaves the reports of earlier periods as they were)."""
    found: dict[str, tuple[str, object]] = {}
    for scope, document in tx.session.execute(
            select(EarnRuleSet.scope, EarnRuleSet.document).where(
                EarnRuleSet.scope.in_(scopes), EarnRuleSet.effective_from < until,
                superseded_by(EarnRuleSet.__table__).is_(None))
            .order_by(EarnRuleSet.effective_from, EarnRuleSet.version)):
        for campaign in RuleSet.model_validate_json(document).campaigns:
            found[f"{scope}:{campaign.id}"] = (scope, campaign)
    return found


def campaign_points(tx: Tx, campaign: str, partner_id: str, cycles: Period, *, rollup: bool = True) -> int:
    """The points the campaign awarded at the partner in entries posted in ``cycles``: the roll-ups,
    plus the awards of entries in cycles not rolled up yet (all cycles with ``rollup=False``)."""
    award = select(func.coalesce(func.sum(CampaignAward.points), 0)).join(Entry, Entry.id == CampaignAward.entry_id)\
        .where(CampaignAward.campaign == campaign, Entry.partner_id == partner_id,
               Entry.cycle_date >= cycles.first, Entry.cycle_date <= cycles.last)
    if not rollup:
        return int(tx.session.execute(award).scalar_one())
    rolled = tx.session.execute(select(func.coalesce(func.sum(ReportCycleCampaigns.points), 0)).where(
        ReportCycleCampaigns.campaign == campaign, ReportCycleCampaigns.partner_id == partner_id,
        ReportCycleCampaigns.cycle_date >= cycles.first, ReportCycleCampaigns.cycle_date <= cycles.last)).scalar_one()
    live = unrolled(tx)
    if live:
        rolled += tx.session.execute(award.where(within(Entry.cycle_date, live))).scalar_one()
    return int(rolled)


# The largest occurred_at window (hours) the network has posted under: a later, smaller
# POINTSNET_OCCURRED_AT_WINDOW_HOURS leaves earns posted that long after they were made.
LARGEST_WINDOW = "occurred_at_window_hours_max"
settings_t = NetworkSetting.__table__


def record_occurred_window(tx: Tx) -> int:
    """At a process's start: keep the largest occurred_at window the network ever posted under (the
    process's own, if larger). Two processes starting at once keep the larger. The windows of earns
    posted before the record was kept are stood for by the ledger's own largest lag, read once by
    migration 0039 at upgrade, never here (every API process would scan the earns before it listens)."""
    kept = _kept_window(tx)
    hours = tx.settings.occurred_at_window_hours
    if kept is not None and kept >= hours:
        return kept
    insert = pg_insert if tx.is_postgres else sqlite_insert
    statement = insert(settings_t).values(name=LARGEST_WINDOW, value=str(hours), set_at=tx.now)
    tx.session.execute(statement.on_conflict_do_update(
        index_elements=["name"], set_={"value": str(hours), "set_at": tx.now},
        where=cast(settings_t.c.value, Integer) < hours))
    return hours


def largest_occurred_window(tx: Tx) -> timedelta:
    """The occurred_at window earns may have been posted under: the largest recorded, or this
    process's own if larger (a network whose processes never recorded one: its own)."""
    return timedelta(hours=max(tx.settings.occurred_at_window_hours, _kept_window(tx) or 0))


def _kept_window(tx: Tx) -> int | None:
    """The largest occurred_at window recorded (hours), None where none is."""
    kept = tx.session.execute(select(settings_t.c.value).where(settings_t.c.name == LARGEST_WINDOW)
                              ).scalar_one_or_none()
    return int(kept) if kept is not None else None


def _midnight(day, zone) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(timezone.utc)


def occurred_window(tx: Tx, partner_id: str, period: Period, cut: date, *, rollup: bool = True) -> dict:
    """Earns at the partner made (``occurred_at``, network time zone) on the days of ``period`` and
    posted by the end of cycle ``cut`` (not before ``period.last``): how many, their points, their
    purchase amounts.

    The sums of the period's cycles (``earn_window``: roll-ups, and the ledger for the rest), less
    the earns posted in those cycles but made on another day, plus those made in the period but
    posted in another cycle. Such earns lie at the period's edges — an earn is posted at most the
    occurred_at window after it was made, and a cycle differs from its day by the cut-off, under a
    day — so they are read from the ledger by ``posted_at`` there, not over the whole period. The
    window is the largest the network ever posted under (``largest_occurred_window``), not only
    the one configured now: an earn posted under a larger one lies further from the edge."""
    figures = earn_window(tx, partner_id, period, rollup=rollup)
    if period.last < period.first:  # an empty window (before a campaign that starts at EARLIEST)
        return figures
    zone = tx.settings.zone
    starts, ends = _midnight(period.first, zone), _midnight(period.last + timedelta(days=1), zone)
    slack, late = timedelta(days=2), largest_occurred_window(tx) + timedelta(days=2)
    made = func.coalesce(Entry.occurred_at, Entry.posted_at)
    in_days = and_(made >= starts, made < ends)
    in_cycles = and_(Entry.cycle_date >= period.first, Entry.cycle_date <= period.last)
    sign = case((in_days, 1), else_=-1)
    amount = purchase_amount(tx)
    moved = tx.session.execute(
        select(func.coalesce(func.sum(sign), 0), func.coalesce(func.sum(sign * Entry.points), 0),
               *exact_sum(tx, sign * amount))
        .where(Entry.partner_id == partner_id, Entry.kind == "earn",
               or_(and_(Entry.posted_at >= starts - slack, Entry.posted_at < starts + late),
                   and_(Entry.posted_at >= ends - slack, Entry.posted_at < ends + late)),
               or_(and_(in_days, ~in_cycles), and_(in_cycles, ~in_days)), Entry.cycle_date <= cut)).one()
    figures["earns"] += int(moved[0])
    figures["points"] += int(moved[1])
    figures["purchase_amount_minor"] += exact_total(tx, moved[2:]) or 0
    return figures


def campaign_effect(tx: Tx, partner_id: str, period: Period, *, rollup: bool = True) -> list[dict]:
    """Every campaign of the partner or the network whose window overlaps the period, as it stood at
    the period's end: what was posted after it (a late earn, an award) counts in later periods' reports
    only, so a report of closed cycles is the same whenever it is made (docs/reports.md)."""
    results = []
    cut = period.last
    # after a campaign's last day, the cycles its late earns (and their awards) may still be posted in:
    # the occurred_at window in whole days, and slack for a cycle's cut-off
    late = timedelta(days=2 + math.ceil(largest_occurred_window(tx) / timedelta(days=1)))
    for key, (scope, campaign) in sorted(campaigns_of(tx, (partner_id, "network"), period.ends_at(tx.settings)).items(),
                                         key=lambda item: (item[1][1].starts_on, item[0])):
        whole = Period.clamped(campaign.starts_on, campaign.ends_on)  # an open-ended campaign ends 9999-12-31
        tail = min(whole.last + late, LATEST) if whole.last < LATEST - late else LATEST
        if tail < period.first or campaign.starts_on > period.last:
            continue  # listed while its days or its late earns' cycles overlap the period
        during = Period(whole.first, min(whole.last, cut))  # its days up to the period's end
        # its awards lie in the cycles from its first day (less a cycle's cut-off) to the last one's postings
        awarded = Period(max(EARLIEST, whole.first - timedelta(days=2)), min(cut, tail))
        results.append({"campaign": key, "name": campaign.name, "funded_by": campaign.funded_by,
                        "starts_on": campaign.starts_on.isoformat(), "ends_on": campaign.ends_on.isoformat(),
                        "campaign_points": campaign_points(tx, key, partner_id, awarded, rollup=rollup),
                        "during": occurred_window(tx, partner_id, during, cut, rollup=rollup),
                        "before": occurred_window(tx, partner_id, during.before(), cut, rollup=rollup)})
    return results
