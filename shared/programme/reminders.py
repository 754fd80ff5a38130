"""Expiry reminders: N days before a member's points expire (``POINTSNET_EXPIRY_REMINDER_DAYS``, e.g. 30,7).

One reminder per (member, expiry date, N), the expiry date being the last day in the network's time
zone on which the points can be used (``last_day``): the unique key on
``expiry_reminders`` makes it exactly once, however often the job runs. A day is reminded of when
its first lot comes within N days, and the reminder names the free points of the whole day (lots
expiring later that day included: there is no second reminder for them). Only free points count
(not spent, not reserved by an open hold: points of a hold past its timeout count as free before the
hold-timeout job releases them, as the member view counts them); a day whose points are all spent gets
no reminder. When a reminder's moment was missed (the job was down, or the lot was earned with less
time left), only the nearest one still ahead is made: a member is never told twice on the same local
day about one expiry date. So no reminder is made for a date the member was reminded of today, none
once a nearer one was made, and a late one gives way to a nearer one that falls due later the same
local day (that one is made at the next run instead).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import literal_column, select

from shared.db.database import Tx
from shared.db.lists import among, among_rows
from shared.db.types import new_id
from shared.ledger.due import apply_due, due_holds_query, group_due_holds
from shared.ledger.state import is_open, lock_members_following_merges, survivors_of_missing
from shared.models import ExpiryReminder, Lot
from shared.programme.days import day_bounds, last_day, network_day
from shared.programme.events import points_expiring

lots_t, reminders_t = Lot.__table__, ExpiryReminder.__table__


def reminder_batch(tx: Tx, after: str, limit: int) -> tuple[str | None, int]:
    """Make the reminders due for the next ``limit`` members (by id) after ``after``.

    Returns the last member id seen (None when the pass is over) and how many reminders were made.
    """
    days = sorted(tx.settings.expiry_reminder_days)
    if not days:
        return None, 0
    zone, now = tx.settings.zone, tx.now
    horizon = now + timedelta(days=days[-1])
    # remaining > 0 written out as ix_lots_open_expires's condition, so the lots come from that index
    # (open lots by expiry); without it the pass walked every lot, spent and expired ones included.
    # Lots all reserved are read too: their hold may be past its timeout, its points free again.
    unexpired = (lots_t.c.remaining > literal_column("0"), lots_t.c.expires_at > now)
    member_ids = tx.session.execute(
        select(lots_t.c.member_id).distinct().where(*unexpired, lots_t.c.expires_at <= horizon,
                                                    lots_t.c.member_id > after)
        .order_by(lots_t.c.member_id).limit(limit)).scalars().all()
    if not member_ids:
        return None, 0
    # Their locks, in id order, before their lots are read: a merge (under the same locks) moves a
    # duplicate's lots and reminders to the survivor, so a reminder is never made for a merged member,
    # and a survivor's day counts its lots from the duplicate. A member merged since it was read gives
    # way to its survivor (locked too, its day counting all its lots), even one outside this batch's
    # ids: one told today is not told again.
    locked = sorted(lock_members_following_merges(tx, member_ids, survivors_of_missing(tx, member_ids)))
    if not locked:
        return member_ids[-1], 0
    # a day is due when its first lot is within the horizon; its reminder counts the whole local day,
    # so the lots are read to the end of the horizon's day (a lot expiring at that midnight included:
    # its last day is the horizon's)
    _, end_of_last_day = day_bounds(network_day(horizon, zone), zone)
    lots = tx.session.execute(
        select(lots_t.c.id, lots_t.c.member_id, lots_t.c.expires_at, lots_t.c.remaining, lots_t.c.reserved)
        # is_open: the members' open lots in the window are one range of ix_lots_member_order
        # (member, open, expiry), not all their lots; only locked members (active, not merged)
        .where(*unexpired, lots_t.c.expires_at <= end_of_last_day, is_open(lots_t.c),
               among(tx.dialect, lots_t.c.member_id, locked))).all()
    back = _released(tx, {lot.member_id for lot in lots if lot.reserved})
    expiring: dict[tuple, list] = {}  # (member, expiry date) -> [free points, first instant]
    for lot in lots:
        free = lot.remaining - lot.reserved + back.get(lot.id, 0)
        if free <= 0:  # spent, or reserved by an open hold
            continue
        key = (lot.member_id, last_day(lot.expires_at, zone))
        day = expiring.setdefault(key, [0, lot.expires_at])
        day[0] += free
        day[1] = min(day[1], lot.expires_at)
    expiring = {key: day for key, day in expiring.items() if day[1] <= horizon}  # the horizon's day may not be due
    today = network_day(now, zone)
    _, end_of_today = day_bounds(today, zone)
    made: dict[tuple, tuple[int, bool]] = {}  # (member, expiry date) -> (nearest reminder made, one made today)
    for row in tx.session.execute(
            select(reminders_t.c.member_id, reminders_t.c.expires_on, reminders_t.c.days_before,
                   reminders_t.c.created_at)
            .where(among(tx.dialect, reminders_t.c.member_id, locked), reminders_t.c.expires_on >= today)):
        nearest, told_today = made.get((row.member_id, row.expires_on), (row.days_before, False))
        made[(row.member_id, row.expires_on)] = (min(nearest, row.days_before),
                                                 told_today or network_day(row.created_at, zone) == today)
    rows = []
    for (member_id, expires_on), (points, first) in sorted(expiring.items()):
        if _told(days, made.get((member_id, expires_on)), first, now, end_of_today):
            continue
        rows.append({"id": new_id("rem"), "member_id": member_id, "expires_on": expires_on,
                     "days_before": _nearest(days, first, now), "points": points, "first_expires_at": first,
                     "created_at": now})
    points_expiring(tx, rows)
    return member_ids[-1], len(rows)


def _released(tx: Tx, holding: set[str]) -> dict[str, int]:
    """Per lot id, the reserved points that are free again because their hold is past its timeout,
    though the hold-timeout job has not released it yet (docs/ledger.md, decision 7): what ``apply_due``
    gives back to the lot, as the member view counts it (points past the expiry their lot had when
    reserved are not). ``holding``: the batch's members with points reserved in the window, read in
    one statement."""
    if not holding:
        return {}
    back: dict[str, int] = {}
    rows = among_rows(tx, due_holds_query(tx.dialect), sorted(holding), now=tx.now)
    for holds in group_due_holds(rows).values():
        back.update(apply_due(0, 0, tx.now, [], list(holds.values()))[2])  # a lot is one member's
    return back


def _nearest(days: list[int], first, now) -> int:
    """The nearest reminder still ahead: the fewest days whose window already holds the day's first lot."""
    return next(n for n in days if first - now <= timedelta(days=n))


def _told(days: list[int], made: tuple[int, bool] | None, first, now, end_of_today) -> bool:
    """Whether the day's nearest reminder is to be left out now, so the member is told once per local day:
    it (or a nearer one) was made already, one for that day was made today, or a nearer one falls due
    later today (that one alone is made, at the next run)."""
    nearest = _nearest(days, first, now)
    if made is not None and (made[0] <= nearest or made[1]):
        return True
    nearer = [n for n in days if n < nearest]
    return bool(nearer) and first - timedelta(days=nearer[-1]) < end_of_today


def reminders_for(tx: Tx, member_id: str, limit: int = 20) -> list[dict]:
    rows = tx.session.execute(select(reminders_t).where(reminders_t.c.member_id == member_id)
                              .order_by(reminders_t.c.created_at.desc(), reminders_t.c.id.desc()).limit(limit))
    return [{"expires_on": r.expires_on.isoformat(), "days_before": r.days_before, "points": r.points,
             "created_at": r.created_at.isoformat()} for r in rows]
