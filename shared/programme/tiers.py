"""Tiers: qualifying points over a rolling window; up at once on the earn, down only at the yearly review.

Qualifying points are the points of the member's ``earn`` entries whose ``occurred_at`` lies in
the window (base, SKU/category multipliers, campaigns, tier extras — everything an earn gave),
less what reversals of those earns took back. Stand-alone bonuses (``bonus`` entries) do not
qualify. The posting engine asks this module for the tier to apply to an earn and reports each
earn back, under the member's row lock, so the upgrade commits with the earn that earned it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import bindparam, func, literal_column, null, select, union_all, update

from shared.db.database import Tx
from shared.db.lists import among_bound, bound_list, per_dialect
from shared.db.types import new_id
from shared.ledger.expiry_policy import _add_months
from shared.ledger.state import among_rows, chunks, lock_members
from shared.models import Entry, Member
from shared.programme.events import tier_changed

members_t = Member.__table__
# Built once: an ORM alias made per call cost more CPU than the API's whole signature check.
_earn, _original, _reversal = (Entry.__table__.alias(name) for name in ("earn", "original", "reversal"))


def add_months(settings, instant: datetime, months: int) -> datetime:
    """Calendar months in the network's time zone (the 31st falls back to the month's last day)."""
    return _add_months(instant.astimezone(settings.zone), months).astimezone(timezone.utc)


def window_start(settings, now: datetime) -> datetime:
    return add_months(settings, now, -settings.tiers.window_months)


@per_dialect
def _duplicates_query(dialect: str):
    return select(members_t.c.id, members_t.c.merged_into).where(among_bound(dialect, members_t.c.merged_into, "ids"))


def _window(dialect: str, *, until: bool = False, before: bool = False) -> tuple[list, list]:
    """The conditions of what counts toward qualifying points: the owners' earns that occurred from
    ``since`` on (before ``until`` too, if asked), and their reversals of such earns (posted before
    ``before`` too, if asked: a review counts no reversal posted after it was due)."""
    earn, original, reversal, since = _earn.c, _original.c, _reversal.c, bindparam("since")
    # posted_at >= since follows from occurred_at >= since; it lets the (member, posted_at) index work
    earned = [earn.kind == "earn", among_bound(dialect, earn.member_id, "owners"), earn.posted_at >= since,
              earn.occurred_at >= since]
    # 'reversal' written into the SQL: the planner can then use the partial index of reversals
    taken_back = [reversal.kind == literal_column("'reversal'"), among_bound(dialect, reversal.member_id, "owners"),
                  reversal.posted_at >= since, original.kind == "earn", original.occurred_at >= since]
    if until:
        earned.append(earn.occurred_at < bindparam("until"))
        taken_back.append(original.occurred_at < bindparam("until"))
    if before:
        taken_back.append(reversal.posted_at < bindparam("before"))
    return earned, taken_back


def _taken_back(taken_back: list):
    return (select(_reversal.c.member_id, _original.c.occurred_at, -_reversal.c.points)
            .join(_original, _original.c.id == _reversal.c.original_entry_id).where(*taken_back))


@per_dialect
def _qualifying_query(dialect: str, review: bool = False):
    """Earns in the window less what reversals of them took back, per member, in one round trip.
    ``review``: only the reversals posted before ``before`` (the chunk's earliest due moment)."""
    earned, taken_back = _window(dialect, before=review)
    return union_all(
        select(_earn.c.member_id, func.sum(_earn.c.points)).where(*earned).group_by(_earn.c.member_id),
        select(_reversal.c.member_id, -func.sum(_reversal.c.points))
        .join(_original, _original.c.id == _reversal.c.original_entry_id)
        .where(*taken_back).group_by(_reversal.c.member_id))


@per_dialect
def _earlier_query(dialect: str):
    """The earns that occurred in [since, until) one by one, and what reversals of them took back: added
    to the sum from ``until`` for the members whose own window starts before ``until``."""
    earned, taken_back = _window(dialect, until=True)
    return union_all(
        select(_earn.c.member_id, _earn.c.occurred_at, _earn.c.points).where(*earned),
        _taken_back(taken_back))


@per_dialect
def _review_earlier_query(dialect: str):
    """For a review, what the sum (``_qualifying_query(review=True)``) leaves out, one by one, with the
    moment each reversal was posted (NULL for an earn): counted for the members whose window holds the
    earn and whose due moment came after the reversal. That is the earns that occurred in [since,
    until), the reversals of those posted before ``later`` (the chunk's latest due moment), and the
    reversals of earns from ``until`` on posted in [before, later)."""
    earned, taken_back = _window(dialect, until=True)
    reversal, original, later = _reversal.c, _original.c, bindparam("later")
    return union_all(  # a reversal first: the union's columns take the types of the first select's
        _taken_back([*taken_back, reversal.posted_at < later]).add_columns(reversal.posted_at),
        _taken_back([reversal.kind == literal_column("'reversal'"), among_bound(dialect, reversal.member_id, "owners"),
                     reversal.posted_at >= bindparam("before"), reversal.posted_at < later,
                     original.kind == "earn", original.occurred_at >= bindparam("until")])
        .add_columns(reversal.posted_at),
        select(_earn.c.member_id, _earn.c.occurred_at, _earn.c.points, null()).where(*earned))


@per_dialect
def _occurred_query(dialect: str):
    return select(_earn.c.id, _earn.c.occurred_at).where(among_bound(dialect, _earn.c.id, "ids"))


@per_dialect
def _tiers_query(dialect: str):
    return (select(members_t.c.id, members_t.c.tier, members_t.c.tier_since, members_t.c.tier_anniversary_at)
            .where(among_bound(dialect, members_t.c.id, "ids")))


def qualifying_points(tx: Tx, member_ids, now: datetime | None = None) -> dict[str, int]:
    """Member -> qualifying points in the window ending ``now`` (members with none are left out)."""
    return _qualifying(tx, dict.fromkeys(member_ids, window_start(tx.settings, now or tx.now)))


def qualifying_points_at(tx: Tx, moments: dict[str, datetime]) -> dict[str, int]:
    """Member -> qualifying points in the window ending at the member's own moment (the review: the
    moment it was due), for many members at once (members with none may be left out). Earns count
    from the window's start on, even those after the moment (on time, each would have upgraded at
    once); reversals only if posted before the moment (on time, none after it downgraded)."""
    return _qualifying(tx, {member_id: window_start(tx.settings, at) for member_id, at in moments.items()}, moments)


def _qualifying(tx: Tx, starts: dict[str, datetime], moments: dict[str, datetime] | None = None) -> dict[str, int]:
    """Member -> qualifying points from its own window start on, set-based: one sum per chunk from the
    latest start, plus the earns one by one between the earliest and the latest start (none when the
    chunk's members share one window), each counted for the members whose window it lies in. With
    ``moments`` (a review), the sum counts the reversals posted before the earliest moment, and those
    posted between the earliest and the latest moment are read one by one too, each counted for the
    members whose moment came after it."""
    points: dict[str, int] = {}
    for chunk in chunks(starts):
        # a survivor of a merge also qualifies with its duplicates' earns
        owner = {row.id: row.merged_into for row in tx.session.execute(
            _duplicates_query(tx.dialect), {"ids": bound_list(tx.dialect, chunk)})}
        owner.update((member_id, member_id) for member_id in chunk)
        owners = bound_list(tx.dialect, owner)
        earliest, latest = min(starts[m] for m in chunk), max(starts[m] for m in chunk)
        if moments is None:
            summed = tx.session.execute(_qualifying_query(tx.dialect), {"owners": owners, "since": latest})
        else:
            first, last = min(moments[m] for m in chunk), max(moments[m] for m in chunk)
            summed = tx.session.execute(_qualifying_query(tx.dialect, review=True), {
                "owners": owners, "since": latest, "before": first})
        for member_id, total in summed:
            points[owner[member_id]] = points.get(owner[member_id], 0) + int(total)
        if moments is None and earliest < latest:
            for member_id, occurred_at, change in tx.session.execute(_earlier_query(tx.dialect), {
                    "owners": owners, "since": earliest, "until": latest}):
                if occurred_at >= starts[owner[member_id]]:
                    points[owner[member_id]] = points.get(owner[member_id], 0) + int(change)
        elif moments is not None and (earliest < latest or first < last):
            for member_id, occurred_at, change, posted_at in tx.session.execute(_review_earlier_query(tx.dialect), {
                    "owners": owners, "since": earliest, "until": latest, "before": first, "later": last}):
                member_id = owner[member_id]
                if occurred_at >= starts[member_id] and (posted_at is None or posted_at < moments[member_id]):
                    points[member_id] = points.get(member_id, 0) + int(change)
    return points


@dataclass
class TierState:
    member_id: str
    tier: str | None  # as stored: NULL is the lowest tier
    since: datetime | None
    anniversary: datetime | None
    qualifying: int | None  # None: not summed (loaded for earns, at the top tier)
    changed: bool = False


@dataclass
class MemberTiers:
    """Tiers of the members a unit of work touches; changes are written by ``flush``."""

    tx: Tx
    states: dict[str, TierState] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    occurred: dict[str, datetime] = field(default_factory=dict)  # earn entry id -> occurred_at, as read or posted
    _since: datetime | None = field(default=None, repr=False)  # the window's start, once worked out

    @property
    def config(self):
        return self.tx.settings.tiers

    def load(self, member_ids, *, for_earns: bool = False, rows: list | None = None,
             as_of: Callable[[Any], datetime] | None = None) -> None:
        """Read the members' tiers and qualifying points. ``for_earns``: only what earns need — an earn
        can only move a member up, so at the top tier its qualifying points change nothing and are not
        summed (the sum walks the member's earns of the whole window; the most active members, who
        have the most earns, are the ones at the top). ``rows``: the members' rows as the caller read
        them under their locks (``lock_members``), with the tier columns: not read again. ``as_of``: the
        moment whose window a member's qualifying points are summed for, from its row (default: now)."""
        missing = set(member_ids) - set(self.states)
        if not self.config.enabled or not missing:
            return
        if rows is not None:
            rows = [row for row in rows if row.id in missing]
            missing -= {row.id for row in rows}
        else:
            rows = []
        if missing:
            rows += list(among_rows(self.tx, _tiers_query(self.tx.dialect), missing))
        top = len(self.config.levels) - 1
        summed = {row.id for row in rows if not for_earns or self.config.rank(row.tier) < top}
        if as_of is None:
            qualifying = qualifying_points(self.tx, summed) if summed else {}
        else:
            qualifying = qualifying_points_at(self.tx, {row.id: as_of(row) for row in rows if row.id in summed})
        for row in rows:
            self.states[row.id] = TierState(row.id, row.tier, row.tier_since, row.tier_anniversary_at,
                                            qualifying.get(row.id, 0) if row.id in summed else None)

    def tier(self, member_id: str) -> str | None:
        """The tier an earn of this member is computed at now (None: tiers are switched off)."""
        if not self.config.enabled:
            return None
        if member_id not in self.states:
            self.load([member_id], for_earns=True)
        state = self.states.get(member_id)
        return self.config.name(state.tier) if state else None

    def _window_start(self) -> datetime:
        """The start of the window ending now (the unit's ``tx.now``), worked out once per unit."""
        if self._since is None:
            self._since = window_start(self.tx.settings, self.tx.now)
        return self._since

    def earned(self, member_id: str, points: int, entry_id: str, occurred_at: datetime) -> None:
        """An earn posted: its points qualify at once if it occurred in the window, as the sum counts
        them (an earn backdated to before the window counts for nothing), and crossing a threshold
        upgrades now."""
        self.occurred[entry_id] = occurred_at  # a reversal later in this unit judges it by the same moment
        state = self.states.get(member_id)
        if state is None or state.qualifying is None:  # at the top tier already
            return
        if occurred_at < self._window_start():
            return
        state.qualifying += points
        target = self.config.qualified(state.qualifying)
        if self.config.rank(target) > self.config.rank(state.tier):
            now = self.tx.now
            self.change(state, target, "qualified", since=now, anniversary=add_months(self.tx.settings, now, 12),
                         entry_id=entry_id)

    def reversed(self, member_id: str, points: int, original, originals: Iterable = ()) -> None:
        """An earn was reversed: fewer qualifying points if the earn occurred in the window — the sum
        counts only reversals of earns in the window (a tier is only lost at the review).

        ``original``: the earn (``entry_id``; ``posted_at`` None when posted in this unit of work);
        ``originals``: the unit's originals, whose times are read at once the first time one is needed.
        """
        state = self.states.get(member_id)
        if state is not None and state.qualifying is not None and self._in_window(original, originals):
            state.qualifying -= points

    def _in_window(self, original, originals: Iterable) -> bool:
        since = self._window_start()
        if original.posted_at is None:  # posted in this unit: ``earned`` noted when it occurred
            occurred = self.occurred.get(original.entry_id)
            return occurred is None or occurred >= since
        if original.posted_at < since:  # it occurred no later than it was posted
            return False
        if original.entry_id not in self.occurred:
            wanted = {o.entry_id for o in originals if o.kind == "earn" and o.posted_at is not None
                      and o.posted_at >= since and o.entry_id not in self.occurred} | {original.entry_id}
            for row in among_rows(self.tx, _occurred_query(self.tx.dialect), wanted):
                self.occurred[row.id] = row.occurred_at
        return self.occurred[original.entry_id] >= since

    def change(self, state: TierState, target: str, reason: str, *, since: datetime,
                anniversary: datetime | None, entry_id: str | None = None) -> None:
        self.history.append({"id": new_id("tch"), "member_id": state.member_id,
                             "from_tier": self.config.name(state.tier), "to_tier": target, "reason": reason,
                             "qualifying_points": state.qualifying, "entry_id": entry_id, "at": self.tx.now})
        lowest = self.config.rank(target) == 0
        state.tier = None if lowest else target
        state.since = None if lowest else since
        state.anniversary = None if lowest else anniversary
        state.changed = True

    def flush(self) -> None:
        changed = sorted((s for s in self.states.values() if s.changed), key=lambda s: s.member_id)
        if changed:
            self.tx.session.execute(
                update(members_t).where(members_t.c.id == bindparam("b_id"))
                .values(tier=bindparam("b_tier"), tier_since=bindparam("b_since"),
                        tier_anniversary_at=bindparam("b_anniversary")),
                [{"b_id": s.member_id, "b_tier": s.tier, "b_since": s.since, "b_anniversary": s.anniversary}
                 for s in changed])
            for state in changed:
                state.changed = False
        tier_changed(self.tx, self.history)
        self.history = []


def review_due(tx: Tx, limit: int) -> int:
    """Review up to ``limit`` members whose tier anniversary plus grace has passed; returns how many.

    Below the tier's threshold by then, a member moves down to the tier its qualifying points
    reach; either way the next review is a year after this anniversary. A review run late (the job
    was down) decides as it would have on time: on the qualifying points of the window ending at the
    moment it was due (the last anniversary passed, plus grace), not at the moment it runs. Earns
    after that moment count (each would have upgraded at once); reversals after it do not (none
    would have downgraded).
    """
    config = tx.settings.tiers
    if not config.enabled:
        return 0
    cutoff = tx.now - timedelta(days=config.grace_days)
    due = tx.session.execute(
        select(members_t.c.id).where(members_t.c.tier_anniversary_at <= cutoff, members_t.c.status == "active")
        .order_by(members_t.c.tier_anniversary_at, members_t.c.id).limit(limit)).scalars().all()
    if not due:
        return 0
    locked = lock_members(tx, due)
    tiers = MemberTiers(tx)
    grace = timedelta(days=config.grace_days)

    def due_at(row) -> datetime:  # the moment the member's review was due (now: none is due)
        if row.tier_anniversary_at is None or row.tier_anniversary_at > cutoff:
            return tx.now
        return _anniversaries(tx.settings, row.tier_anniversary_at, cutoff, row.tier_since)[0] + grace

    tiers.load(locked, as_of=due_at)
    for state in tiers.states.values():
        if state.anniversary is None or state.anniversary > cutoff:  # changed by an earn meanwhile
            continue
        anniversary = _anniversaries(tx.settings, state.anniversary, cutoff, state.since)[1]
        target = config.qualified(state.qualifying)
        if config.rank(target) < config.rank(state.tier):
            tiers.change(state, target, "anniversary_review", since=tx.now, anniversary=anniversary)
        elif config.rank(target) > config.rank(state.tier):  # thresholds lowered since the last earn
            tiers.change(state, target, "qualified", since=tx.now, anniversary=add_months(tx.settings, tx.now, 12))
        else:
            state.anniversary, state.changed = anniversary, True
    tiers.flush()
    return len(tiers.states)


def _anniversaries(settings, anniversary: datetime, cutoff: datetime,
                   since: datetime | None = None) -> tuple[datetime, datetime]:
    """The last anniversary not after ``cutoff`` (the review due), and the next one (the next review).

    Each is counted in whole years from the moment the rhythm started, not from the anniversary
    before it: a member upgraded on 29 February is reviewed on 28 February in common years and on
    29 February again in leap years (stepping from one anniversary to the next would keep the 28th
    for good). That moment is ``since`` (``tier_since``) when the stored anniversary is a whole
    number of years after it, as it is after an upgrade (and a merge, which carries both over);
    otherwise (a downgrade at a review starts ``since`` afresh) the stored anniversary itself."""
    start, years = _rhythm(settings, anniversary, since)
    while add_months(settings, start, 12 * (years + 1)) <= cutoff:
        years += 1
    return add_months(settings, start, 12 * years), add_months(settings, start, 12 * (years + 1))


def _rhythm(settings, anniversary: datetime, since: datetime | None) -> tuple[datetime, int]:
    """The moment the member's yearly rhythm counts from, and how many years ``anniversary`` is after it."""
    if since is not None:
        years = anniversary.astimezone(settings.zone).year - since.astimezone(settings.zone).year
        if years >= 1 and add_months(settings, since, 12 * years) == anniversary:
            return since, years
    return anniversary, 0


def tier_view(tx: Tx, member_id: str) -> dict | None:
    """The member's tier now, its qualifying points and its next review (None: tiers are off)."""
    config = tx.settings.tiers
    if not config.enabled:
        return None
    row = tx.session.execute(select(members_t.c.tier, members_t.c.tier_since, members_t.c.tier_anniversary_at)
                             .where(members_t.c.id == member_id)).first()
    if row is None:
        return None
    points = qualifying_points(tx, [member_id]).get(member_id, 0)
    rank = config.rank(row.tier)
    following = config.levels[rank + 1] if rank + 1 < len(config.levels) else None
    return {"tier": config.name(row.tier), "since": row.tier_since.isoformat() if row.tier_since else None,
            "qualifying_points": points, "window_months": config.window_months,
            "review_at": (row.tier_anniversary_at + timedelta(days=config.grace_days)).isoformat()
            if row.tier_anniversary_at else None,
            "next_tier": following.name if following else None,
            "points_to_next_tier": max(0, following.threshold - points) if following else None}


def current_tier(tx: Tx, member_id: str) -> str | None:
    """The member's tier name (None when tiers are switched off)."""
    if not tx.settings.tiers.enabled:
        return None
    stored = tx.session.execute(select(members_t.c.tier).where(members_t.c.id == member_id)).scalar_one_or_none()
    return tx.settings.tiers.name(stored)
