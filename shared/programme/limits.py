"""Velocity limits: points a member earns and spends per network day, points a partner issues per day.

Counts are gross (a reversal gives no room back, like campaign caps) and exact under concurrency:

* member counts are summed from the ledger after the posting engine has locked the member, and
  every entry that moves a member's points is written under that lock; a member's counts include
  the day's entries of the duplicates merged into it (the merge takes both locks, and nothing
  posts to a merged duplicate again);
* a partner's issuance is kept in one ``issuance_counters`` row per (partner, day), made (from the
  day's issuance so far) by the first unit that has a cap in force that day, read FOR UPDATE and
  rewritten at the end of each capped unit. A unit without a cap, under rules that took effect
  today, adds its issuance to the day's row if there is one (the cap was in force earlier that day:
  it may be set again, and must count what was issued meanwhile), as campaign totals are kept;
  without a row it touches nothing, and under rules in force since before the day began it sends
  nothing at all (they were in force all day: no cap today), so a partner that has no cap that day
  has no hot row and no extra statement (a capped partner's writes serialise on it: that is what a
  cap costs).

Within a unit (a batch) earlier events count toward later ones. A refusal raises an operator alert
(``velocity_limit``), recorded even though the refused unit may roll back. An earn's quote is refused
by the same check (``check_quote``) reading the same counts without a lock (the counter row as a
plain read sees it), counting nothing and alerting nobody: a quote writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import bindparam, case, func, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.alerts import raise_alert
from shared.db.database import Tx
from shared.db.lists import among, among_bound, among_rows, chunks, per_dialect
from shared.errors import VelocityLimitExceeded
from shared.models import Entry, Hold, IssuanceCounter, Lot, Member
from shared.programme.days import day_bounds, network_day
from shared.rules.document import Limits

entries_t, holds_t, lots_t, counters_t = Entry.__table__, Hold.__table__, Lot.__table__, IssuanceCounter.__table__
members_t = Member.__table__


def effective_limits(partner: Limits | None, network: Limits | None) -> Limits:
    """Member limits come from the network's rules; the issuance cap from the partner's, else the network's."""
    partner_cap = partner.partner_daily_issuance if partner and partner.partner_daily_issuance else None
    return Limits(
        member_daily_earn=network.member_daily_earn if network else None,
        member_daily_burn=network.member_daily_burn if network else None,
        partner_daily_issuance=partner_cap or (network.partner_daily_issuance if network else None),
    )


@per_dialect
def _day_entries_query(dialect: str, kind: str):
    """Points of the day's entries of ``kind`` per member: the members' own, and those of the
    duplicates merged into them (entries stay with the member they were posted for; the person is
    one, so what its duplicate earned or spent today counts toward its limits today). One round trip:
    for a member nobody was merged into, the second half is one probe of ix_members_merged_into,
    the partial index of the few merged duplicates, which finds nothing."""
    entry, member = entries_t.c, members_t.c
    day = (entry.kind == kind, entry.posted_at >= bindparam("start"), entry.posted_at < bindparam("end"))
    own = (select(entry.member_id, func.sum(entry.points))
           .where(among_bound(dialect, entry.member_id, "ids"), *day).group_by(entry.member_id))
    merged_in = (select(member.merged_into, func.sum(entry.points))
                 .select_from(members_t.join(entries_t, entry.member_id == member.id))
                 .where(among_bound(dialect, member.merged_into, "ids"), *day).group_by(member.merged_into))
    return union_all(own, merged_in)


def _day_entries(tx: Tx, kind: str, member_ids: Iterable[str], start: datetime, end: datetime) -> dict[str, int]:
    found: dict[str, int] = {}
    for member, points in among_rows(tx, _day_entries_query(tx.dialect, kind), member_ids, start=start, end=end):
        found[member] = found.get(member, 0) + int(points)
    return found


def earned_on(tx: Tx, member_ids: Iterable[str], start: datetime, end: datetime) -> dict[str, int]:
    """Points credited to members by earns (purchases and activities) posted in [start, end), their
    merged duplicates' included."""
    return _day_entries(tx, "earn", member_ids, start, end)


def spent_on(tx: Tx, member_ids: Iterable[str], start: datetime, end: datetime) -> dict[str, int]:
    """Points members spent in [start, end): burns (their merged duplicates' included), plus holds
    placed then (open: held; captured: captured; voided or timed out: nothing) — so a hold counts
    once, on the day it was placed; a merge moves the duplicate's holds to the survivor. An open hold
    past its ``expires_at`` has timed out (it can no longer be captured) even before the
    hold-timeout job releases it: it counts nothing."""
    found = _day_entries(tx, "burn", member_ids, start, end)
    held = case(((holds_t.c.status == "open") & (holds_t.c.expires_at > tx.now), holds_t.c.points),
                (holds_t.c.status == "captured", holds_t.c.captured_points), else_=0)
    for chunk in chunks(member_ids):
        for member, points in tx.session.execute(
                select(holds_t.c.member_id, func.sum(held))
                .where(among(tx.dialect, holds_t.c.member_id, chunk), holds_t.c.created_at >= start, holds_t.c.created_at < end)
                .group_by(holds_t.c.member_id)):
            found[member] = found.get(member, 0) + int(points or 0)
    return found


def issued_on(tx: Tx, partner_id: str, start: datetime, end: datetime) -> int:
    """Partner-funded points of the partner's earns posted in [start, end) (seeds a day's counter)."""
    return int(tx.session.execute(
        select(func.coalesce(func.sum(lots_t.c.points), 0))
        .select_from(entries_t.join(lots_t, lots_t.c.entry_id == entries_t.c.id))
        .where(entries_t.c.partner_id == partner_id, entries_t.c.kind == "earn",
               entries_t.c.posted_at >= start, entries_t.c.posted_at < end,
               lots_t.c.funder_partner_id == partner_id)).scalar_one())


def lock_issuance_counter(tx: Tx, partner_id: str, day, start: datetime, end: datetime) -> int:
    """The partner's issuance so far on ``day``, its counter row locked until the unit ends."""
    key = (counters_t.c.partner_id == partner_id) & (counters_t.c.business_day == day)
    query = select(counters_t.c.points).where(key)
    if tx.is_postgres:
        query = query.with_for_update()
    points = tx.session.execute(query).scalar_one_or_none()
    if points is not None:
        return int(points)
    insert = pg_insert if tx.is_postgres else sqlite_insert
    seed = issued_on(tx, partner_id, start, end)  # issuance before the cap came into force counts too
    tx.session.execute(insert(counters_t).values(partner_id=partner_id, business_day=day, points=seed)
                       .on_conflict_do_nothing())
    return int(tx.session.execute(query).scalar_one())  # a twin may have created it first: its value wins


def read_issuance(tx: Tx, partner_id: str, day, start: datetime, end: datetime) -> int:
    """The partner's issuance so far on ``day`` as a plain read sees it, locking and writing nothing
    (a quote's): the day's counter row, or without one what ``lock_issuance_counter`` would seed it with."""
    key = (counters_t.c.partner_id == partner_id) & (counters_t.c.business_day == day)
    points = tx.session.execute(select(counters_t.c.points).where(key)).scalar_one_or_none()
    return int(points) if points is not None else issued_on(tx, partner_id, start, end)


class DailyLimits:
    """The velocity limits of one unit of work for one partner, counted as its events post."""

    def __init__(self, tx: Tx, partner_id: str, limits: Limits, member_ids: Iterable[str], *,
                 rules_since: datetime | None = None):
        self.tx = tx
        self.partner_id = partner_id
        self.limits = limits
        self.day = network_day(tx.now, tx.settings.zone)
        self.start, self.end = day_bounds(self.day, tx.settings.zone)
        self._member_ids = set(member_ids)
        self._earned: dict[str, int] | None = None
        self._spent: dict[str, int] | None = None
        self._released: dict[str, int] = {}  # points of today's holds this unit captured or voided, not spent
        self._issued: int | None = None
        self._issued_at_start = 0
        self._issued_uncapped = 0  # partner-funded points given without a cap: added to a row if there is one
        # Rules in force since before today began were in force all day: without a cap now, there was
        # none today, so there is no row to add to (and no statement to send).
        self._rules_changed_today = rules_since is not None and rules_since > self.start
        self._alerts: dict[tuple, dict] = {}

    @property
    def active(self) -> bool:
        return any((self.limits.member_daily_earn, self.limits.member_daily_burn, self.limits.partner_daily_issuance))

    def check_earn(self, member_id: str, points: int, partner_points: int) -> None:
        """Refuse an earn over a limit; otherwise count it (nothing after this check refuses an earn)."""
        refusal = self._earn_refusal(member_id, points, partner_points, self._locked_issuance)
        if refusal is not None:
            name, limit, used, asked, subject = refusal
            self._refuse(name, limit, used, asked, member_id, subject=subject)
        if self.limits.member_daily_earn is not None:
            self._earned[member_id] = self._earned.get(member_id, 0) + points
        if self.limits.partner_daily_issuance is not None and partner_points:
            self._issued += partner_points
        elif partner_points:
            self._issued_uncapped += partner_points

    def check_quote(self, member_id: str, points: int, partner_points: int) -> None:
        """Refuse the quote of an earn ``check_earn`` would refuse, with the same figures, reading only:
        the partner's counter row is read as a plain read reads it (never made, locked or rewritten),
        nothing is counted and no alert is raised (a quote writes nothing)."""
        refusal = self._earn_refusal(member_id, points, partner_points, self._read_issuance)
        if refusal is not None:
            raise self._exceeded(*refusal[:4])

    def _earn_refusal(self, member_id: str, points: int, partner_points: int,
                      issued_so_far: Callable[[], int]) -> tuple[str, int, int, int, str | None] | None:
        """The limit an earn of ``points`` (``partner_points`` of them the partner's) would exceed, as
        (limit name, limit, used, asked, subject), or None: the member's first, then the partner's
        issuance so far (``issued_so_far``, read only when the partner has a cap and the earn issues)."""
        limit = self.limits.member_daily_earn
        if limit is not None:
            if self._earned is None:
                self._earned = earned_on(self.tx, self._member_ids, self.start, self.end)
            used = self._earned.get(member_id, 0)
            if used + points > limit:
                return "member_daily_earn", limit, used, points, member_id
        cap = self.limits.partner_daily_issuance
        if cap is not None and partner_points:
            issued = issued_so_far()
            if issued + partner_points > cap:
                return "partner_daily_issuance", cap, issued, partner_points, None
        return None

    def _locked_issuance(self) -> int:
        """The partner's issuance today, counted in this unit, its counter row locked from the first read."""
        if self._issued is None:
            self._issued = self._issued_at_start = lock_issuance_counter(
                self.tx, self.partner_id, self.day, self.start, self.end)
        return self._issued

    def _read_issuance(self) -> int:
        return read_issuance(self.tx, self.partner_id, self.day, self.start, self.end)

    def check_spend(self, member_id: str, points: int) -> None:
        """Refuse a burn or hold over the member's daily limit; otherwise count it."""
        limit = self.limits.member_daily_burn
        if limit is None:
            return
        if self._spent is None:
            self._spent = spent_on(self.tx, self._member_ids | self._released.keys(), self.start, self.end)
            for member, released in self._released.items():  # the database still has those holds open
                self._spent[member] = self._spent.get(member, 0) - released
        used = self._spent.get(member_id, 0)
        if used + points > limit:
            self._refuse("member_daily_burn", limit, used, points, member_id, subject=member_id)
        self._spent[member_id] = used + points

    def hold_resolved(self, member_id: str, created_at: datetime | None, released: int) -> None:
        """A hold placed earlier and captured or voided in this unit: ``spent_on`` counts it as open (the
        capture or void is written when the unit ends), held points in full, but what it releases was
        not spent. Only a hold placed on the limit's day counts toward it (a hold counts on the day it was
        placed); a hold placed in this unit has no id a later event of it could name."""
        if self.limits.member_daily_burn is None or not released or created_at is None:
            return
        if not self.start <= created_at < self.end:
            return
        if self._spent is not None:
            self._spent[member_id] = self._spent.get(member_id, 0) - released
        else:
            self._released[member_id] = self._released.get(member_id, 0) + released

    def _refuse(self, name: str, limit: int, used: int, asked: int, member_id: str, *, subject: str | None):
        # One alert per limit and subject per unit; a batch that hits a limit many times counts its refusals,
        # and the detail describes the latest of them (the member refused last under the partner's cap,
        # what was used and asked then), as an alert that later units fold into it does.
        key = (name, subject)
        if key in self._alerts:
            detail = self._alerts[key]
            detail.update(used=used, asked=asked, refused_events=detail["refused_events"] + 1)
            if subject is None:
                detail["last_member_id"] = member_id
        else:
            raise_alert(self.tx, "velocity_limit", partner_id=self.partner_id, member_id=subject, limit_name=name,
                        limit=limit, used=used, asked=asked, business_day=self.day.isoformat(),
                        refused_events=1, **({} if subject else {"last_member_id": member_id}))
            self._alerts[key] = self.tx.alerts[-1]["detail"]
        raise self._exceeded(name, limit, used, asked)

    def _exceeded(self, name: str, limit: int, used: int, asked: int) -> VelocityLimitExceeded:
        return VelocityLimitExceeded(
            f"{name.replace('_', ' ')} limit of {limit} points would be exceeded: {used} used on "
            f"{self.day.isoformat()}, {asked} asked", limit_name=name, limit=limit, used=used,
            remaining=max(0, limit - used), business_day=self.day.isoformat())

    def flush(self) -> None:
        today = (counters_t.c.partner_id == self.partner_id) & (counters_t.c.business_day == self.day)
        if self._issued is not None and self._issued != self._issued_at_start:
            self.tx.session.execute(update(counters_t).where(today).values(points=self._issued))
        if self._issued_uncapped and self._rules_changed_today:
            # the day's row, if a cap made it earlier: a cap set again today counts these points
            # (the row's lock orders this after a capped unit that holds it, and a capped unit after this)
            self.tx.session.execute(update(counters_t).where(today)
                                    .values(points=counters_t.c.points + self._issued_uncapped))
