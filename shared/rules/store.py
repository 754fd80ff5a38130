"""Rule sets in the database: new versions take effect at a given instant; old earns stay explainable."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Iterable

from sqlalchemy import bindparam, func, insert, select, union_all, update

from shared.db.advisory import lock_until_commit
from shared.db.database import Tx
from shared.db.lists import among
from shared.db.types import new_id
from shared.errors import ValidationFailed
from shared.models import CampaignAward, CampaignTotal, EarnRuleSet
from shared.partners.contracts import refuse_beyond_horizon, require_partner
from shared.rules.document import RuleSet, canonical, parse

rule_sets = EarnRuleSet.__table__
awards = CampaignAward.__table__
totals = CampaignTotal.__table__


def set_rules(tx: Tx, scope: str, text: str, effective_from: datetime | None = None) -> dict:
    """Store a new version of a partner's (or the network's) rules, in force from ``effective_from`` (default now).

    Saves of one scope take turns: on PostgreSQL a lock on the scope, held until the unit commits, is
    taken before the latest version is read (a writing unit reads each statement afresh), so two
    operators saving at once get the next two versions rather than the same one (SQLite's writers
    run one at a time)."""
    if scope != "network":
        require_partner(tx, scope)
    rules = parse(text, network=scope == "network")
    _refuse_unknown_tiers(tx, rules)
    effective_from = effective_from or tx.now
    if effective_from < tx.now:
        raise ValidationFailed("rules cannot take effect in the past: earns already posted keep their rules")
    # as a contract version; both days in the network's time zone, whatever offset the instant is written in
    zone = tx.settings.zone
    try:
        day = effective_from.astimezone(zone).date()
    except OverflowError:  # past 9999-12-31 there (a future instant: the past was refused above)
        day = effective_from.date()
    refuse_beyond_horizon(day, tx.now.astimezone(zone).date(), "a rules version")
    if tx.is_postgres:
        lock_until_commit(tx.session, "rules", scope)
    version = (tx.session.execute(select(func.max(rule_sets.c.version)).where(rule_sets.c.scope == scope))
               .scalar_one() or 0) + 1
    # the versions still scheduled: this save supersedes them (they will never take effect)
    supersedes = list(tx.session.execute(
        select(rule_sets.c.version).where(rule_sets.c.scope == scope, rule_sets.c.effective_from > tx.now,
                                          superseded_by(rule_sets).is_(None))
        .order_by(rule_sets.c.version)).scalars())
    tx.session.execute(insert(rule_sets).values(id=new_id("rul"), scope=scope, version=version,
                                                effective_from=effective_from, document=canonical(rules),
                                                created_at=tx.now))
    return {"scope": scope, "version": version, "effective_from": effective_from.isoformat(),
            "supersedes": supersedes}


class TiersSwitchedOff(ValidationFailed):
    code, title = "tiers_switched_off", "Tiers are switched off"


def _refuse_unknown_tiers(tx: Tx, rules: RuleSet) -> None:
    """A tier multiplier applies to members holding that tier of the ladder (POINTSNET_TIERS): one
    naming no tier of it (a typo: glod) would silently never apply, so the document is refused; so is
    any tier multiplier while tiers are switched off (no earn has a tier then)."""
    if rules.tier_multipliers and not tx.settings.tiers.enabled:
        raise TiersSwitchedOff(
            "the rules document is invalid: tier_multipliers cannot be saved while tiers are switched off "
            "(POINTSNET_TIERS has enabled false): no earn has a tier, so they would never apply; remove them, "
            "or switch tiers on first")
    ladder, unknown = _unknown_tiers(tx.settings, rules)
    if unknown:
        raise ValidationFailed("the rules document is invalid: " + "; ".join(
            f"tier_multipliers: {tier} is not a tier" for tier in unknown)
            + f" (the tiers are {', '.join(ladder)})")


def _unknown_tiers(settings, rules: RuleSet) -> tuple[list[str], list[str]]:
    """(the tier ladder's names, the tiers ``rules``' multipliers name that it does not have)."""
    ladder = [level.name for level in settings.tiers.levels]
    return ladder, [tier for tier in rules.tier_multipliers if tier not in ladder]


def tier_warnings(settings, rules: RuleSet) -> list[str]:
    """What a stored version's tier multipliers name that the tiers configured now do not have: a
    tier a later POINTSNET_TIERS dropped (or all of them, tiers switched off). Saving refuses such a
    document; a stored one stays as it was (it governed its time), and its multipliers for those
    tiers never apply — members holding a dropped tier count as the lowest."""
    if not rules.tier_multipliers:
        return []
    if not settings.tiers.enabled:
        return [f"tier_multipliers ({', '.join(rules.tier_multipliers)}) never apply: tiers are switched off "
                "(POINTSNET_TIERS)"]
    ladder, unknown = _unknown_tiers(settings, rules)
    return [f"tier_multipliers: {tier} is no longer a tier (the tiers are {', '.join(ladder)}): its multiplier "
            "never applies" for tier in unknown]


def rules_naming_unknown_tiers(tx: Tx, scope: str | None = None) -> list[dict]:
    """Every scope (or just ``scope``) whose version in force now, or a version scheduled (not
    superseded), has tier multipliers the tiers configured now do not have (``tier_warnings``), by
    scope and version. Only those versions are read, never a scope's whole history: what
    `pointsnet rules check` reports, and what the dashboard's Rules tab warns of on every page."""
    found = []
    scopes = ([scope] if scope is not None else
              tx.session.execute(select(rule_sets.c.scope).distinct().order_by(rule_sets.c.scope)).scalars().all())
    for each in scopes:
        current = tx.session.execute(_in_force(each, tx.now)).first()
        rows = ([current] if current is not None else []) + list(tx.session.execute(
            select(rule_sets.c.version, rule_sets.c.document, rule_sets.c.effective_from)
            .where(rule_sets.c.scope == each, rule_sets.c.effective_from > tx.now,
                   superseded_by(rule_sets).is_(None)).order_by(rule_sets.c.version)))
        for row in rows:
            warnings = tier_warnings(tx.settings, _parsed(row.document))
            if warnings:
                found.append({"scope": each, "version": row.version,
                              "status": "scheduled" if row.effective_from > tx.now else "in_force",
                              "warnings": warnings})
    return found


# A newer saved version supersedes every older version not yet in force when it was saved: an
# operator's latest save is what they mean, so a version scheduled earlier never takes over from it
# on its date (docs/earn-rules.md, "Decisions"). Taking effect is never undone: a version already in
# force when a newer one was saved governed its own time. Among the versions not superseded, a
# newer one never takes effect before an older one (it was saved after the older one took effect,
# and takes effect at the earliest when saved), so the one in force is the newest begun.
_newer = rule_sets.alias("newer")


def superseded_by(versions) -> object:
    """The first version saved while ``versions``' row was not yet in force (None: not superseded)."""
    return (select(func.min(_newer.c.version))
            .where(_newer.c.scope == versions.c.scope, _newer.c.version > versions.c.version,
                   _newer.c.created_at < versions.c.effective_from)
            .correlate(versions).scalar_subquery())


def _in_force(scope, instant) -> object:
    """The scope's version in force at ``instant``: the newest begun by then and not superseded."""
    return (select(rule_sets.c.scope, rule_sets.c.version, rule_sets.c.document, rule_sets.c.effective_from)
            .where(rule_sets.c.scope == scope, rule_sets.c.effective_from <= instant,
                   ~select(_newer.c.version).where(_newer.c.scope == rule_sets.c.scope,
                                                   _newer.c.version > rule_sets.c.version,
                                                   _newer.c.created_at < rule_sets.c.effective_from)
                   .correlate(rule_sets).exists())
            .order_by(rule_sets.c.version.desc()).limit(1))


def rules_in_force(tx: Tx, scope: str, instant: datetime) -> tuple[int, RuleSet] | None:
    row = tx.session.execute(_in_force(scope, instant)).first()
    return (row.version, _parsed(row.document)) if row else None


# Built once: the partner's version in force and the network's, in one round trip.
_BOTH_IN_FORCE = union_all(select(_in_force(bindparam("partner"), bindparam("instant")).subquery()),
                           select(_in_force("network", bindparam("instant")).subquery()))


@lru_cache(maxsize=512)
def _parsed(document: str) -> RuleSet:
    """A stored version's document never changes, and a RuleSet is frozen: parse each once per process."""
    return RuleSet.model_validate_json(document)


def rules_in_force_for(tx: Tx, partner_id: str, instant: datetime) -> tuple[tuple | None, ...]:
    """(the partner's, the network's) rules in force at ``instant``, each (version, rules, in force
    since) or None."""
    found = {row.scope: (row.version, _parsed(row.document), row.effective_from)
             for row in tx.session.execute(_BOTH_IN_FORCE, {"partner": partner_id, "instant": instant})}
    return found.get(partner_id), found.get("network")


def _stored_totals(tx: Tx, keys) -> dict[str, int]:
    return {campaign: int(points) for campaign, points in tx.session.execute(
        select(totals.c.campaign, totals.c.points).where(totals.c.campaign.in_(sorted(keys))))}


def _summed(tx: Tx, keys) -> dict[str, int]:
    """The campaigns' awards summed: what a total row starts from (and what a quote reads without one)."""
    found = dict.fromkeys(keys, 0)
    found.update((campaign, int(total)) for campaign, total in tx.session.execute(
        select(awards.c.campaign, func.sum(awards.c.points)).where(awards.c.campaign.in_(sorted(keys)))
        .group_by(awards.c.campaign)))
    return found


def campaign_usage(tx: Tx, in_all: dict[str, int], per_member: set[str], member_ids: set[str], *,
                   lock: bool = True, running: Iterable[str] = ()) -> dict[tuple[str, str | None], int]:
    """(campaign, None) -> points the campaign gave in all, for the campaigns ``in_all`` (key -> its
    cap in all), and (campaign, member) -> points it gave each of ``member_ids``, for ``per_member``.

    What a campaign gave in all is its ``campaign_totals`` row; the first unit that needs one makes it
    from the sum of the campaign's awards. ``lock`` (a unit that may give points): on PostgreSQL each
    campaign of ``in_all`` with room left under its cap (or no row yet) is locked until the unit
    commits, and its total read again: two units giving its points concurrently would otherwise both
    read the same total and together give more than its cap. A campaign whose cap is used up needs
    no lock: what it gave only grows (awards are never deleted; a reversal gives no room back), so no
    unit can give from it again. The campaigns ``running`` without a cap in all are locked shared:
    a unit giving from one of them under rules without the cap (an earlier rule version still in
    flight, or a later one that dropped the cap) adds to a total row if there is one (a trigger on
    PostgreSQL; ``Journal.flush`` on SQLite), and the unit that makes the row waits for it, so the
    row counts its points.
    All locks are taken in key order. (SQLite's writers run one at a time.)"""
    usage: dict[tuple[str, str | None], int] = {}
    stored = _stored_totals(tx, in_all) if in_all else {}
    room = {key for key, cap in in_all.items() if stored.get(key, 0) < cap}
    if lock and tx.is_postgres:
        for key in sorted(room | set(running)):
            lock_until_commit(tx.session, "campaign", key, shared=key not in room)
        if room:
            stored.update(_stored_totals(tx, room))  # read again under the locks (a new snapshot)
    missing = [key for key in in_all if key not in stored]
    if missing:
        made = _summed(tx, missing)
        if lock:  # a unit that may give points keeps the row (a quote writes nothing)
            tx.session.execute(insert(totals), [{"campaign": key, "points": points} for key, points in made.items()])
        stored.update(made)
    usage.update(((key, None), stored[key]) for key in in_all)
    if per_member and member_ids:
        for campaign, member, total in tx.session.execute(
                select(awards.c.campaign, awards.c.member_id, func.sum(awards.c.points))
                .where(awards.c.campaign.in_(sorted(per_member)),
                       among(tx.dialect, awards.c.member_id, sorted(member_ids)))
                .group_by(awards.c.campaign, awards.c.member_id)):
            usage[(campaign, member)] = int(total)
    return usage


def kept_campaigns(tx: Tx) -> list[str]:
    """The campaigns with a kept total (``campaign_totals``), in key order."""
    return list(tx.session.execute(select(totals.c.campaign).order_by(totals.c.campaign)).scalars())


def repair_campaign_total(tx: Tx, key: str) -> tuple[int, int] | None:
    """Set the campaign's kept total to the sum of its awards; (kept, summed) when they differed.

    On PostgreSQL the campaign's lock is taken exclusively first, so every unit of this release that
    may be giving from the campaign (it holds the lock, shared or not) has committed and the sum
    counts its awards; units after it add to the repaired row. Then the row itself is locked before
    the sum: a unit of the previous release takes no campaign lock, but once it has written an award
    the trigger has added it to the row, which stays locked until it commits. (SQLite's writers run
    one at a time.)"""
    if tx.is_postgres:
        lock_until_commit(tx.session, "campaign", key)
    kept = tx.session.execute(select(totals.c.points).where(totals.c.campaign == key)
                              .with_for_update()).scalar_one_or_none()
    if kept is None:
        return None
    summed = _summed(tx, [key])[key]
    if int(kept) == summed:
        return None
    tx.session.execute(update(totals).where(totals.c.campaign == key).values(points=summed))
    return int(kept), summed


def rule_versions(tx: Tx, scope: str, *, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
    """A scope's rule set versions, newest first, each with its document and its ``status`` now:
    ``in_force``; ``scheduled`` (takes effect at its ``effective_from``); ``superseded`` (a newer
    version, ``superseded_by``, was saved before it took effect, so it never does); ``replaced``
    (was in force, a newer version has taken over). ``warnings``: for a version in force or scheduled,
    the tiers its multipliers name that the tiers configured now do not have (``tier_warnings``)."""
    rows = tx.session.execute(select(rule_sets, superseded_by(rule_sets).label("superseded_by")).where(rule_sets.c.scope == scope)
                              .order_by(rule_sets.c.version.desc()).offset(offset).limit(limit)).all()
    total = tx.session.execute(select(func.count()).select_from(rule_sets)
                               .where(rule_sets.c.scope == scope)).scalar_one()
    current = tx.session.execute(_in_force(scope, tx.now)).first()

    def status(row) -> str:
        if row.superseded_by is not None:
            return "superseded"
        if row.effective_from > tx.now:
            return "scheduled"
        return "in_force" if current is not None and row.version == current.version else "replaced"

    def row(r) -> dict:
        shown = status(r)
        return {"version": r.version, "effective_from": r.effective_from.isoformat(),
                "created_at": r.created_at.isoformat(), "status": shown, "superseded_by": r.superseded_by,
                "document": r.document,
                "warnings": tier_warnings(tx.settings, _parsed(r.document)) if shown in ("in_force", "scheduled")
                else []}

    return [row(r) for r in rows], int(total)
