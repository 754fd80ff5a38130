"""Business-day settlement cycles: which cycle an instant falls in, and the closed-cycle guard."""

from __future__ import annotations

import weakref
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.config import ConfigurationError, Settings
from shared.db.database import Tx
from shared.errors import CycleClosed
from shared.models import Cycle, Entry, NetworkSetting

cycles = Cycle.__table__


def cycle_end(cycle_date: date, settings: Settings) -> datetime:
    """The instant a cycle's business day ends (its cut-off), in UTC: the first instant at which the
    network's wall clock reads the cut-off time of the next day.

    Around a daylight-saving change that wall time can occur twice (autumn: the later one ends the
    day, which is then an hour longer) or not at all (spring: the day ends at the change itself)."""
    return _cycle_end(cycle_date, settings.timezone, settings.cycle_cutoff_minutes)


@lru_cache(maxsize=1024)
def _cycle_end(cycle_date: date, zone_name: str, cutoff_minutes: int) -> datetime:
    zone = ZoneInfo(zone_name)
    wall = datetime.combine(cycle_date + timedelta(days=1), time(0)) + timedelta(minutes=cutoff_minutes)
    later = wall.replace(tzinfo=zone, fold=1).astimezone(timezone.utc)  # the later of a repeated time
    if later.astimezone(zone).replace(tzinfo=None) == wall:
        return later
    # the wall time does not exist (skipped forward): the day ends at the change, the first instant
    # whose wall time is past the cut-off (changes fall on whole seconds)
    early, late = sorted(int(wall.replace(tzinfo=zone, fold=fold).timestamp()) for fold in (0, 1))
    while late - early > 1:
        middle = (early + late) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            late = middle
        else:
            early = middle
    return datetime.fromtimestamp(late, timezone.utc)


def cycle_date_for(instant: datetime, settings: Settings) -> date:
    """The business day (network time zone, after the cut-off) an instant belongs to: the cycle whose
    end (``cycle_end``) is the first one after it. Instants only ever move forward through cycles,
    also in the hour a daylight-saving change repeats."""
    local = instant.astimezone(settings.zone).replace(tzinfo=None) - timedelta(minutes=settings.cycle_cutoff_minutes)
    candidate = local.date()
    if instant >= cycle_end(candidate, settings):
        return candidate + timedelta(days=1)
    if instant < cycle_end(candidate - timedelta(days=1), settings):
        return candidate - timedelta(days=1)
    return candidate


def _ensure_cycle(tx: Tx, cycle_date: date) -> None:
    insert = pg_insert if tx.is_postgres else sqlite_insert
    tx.session.execute(insert(cycles).values(cycle_date=cycle_date, status="open").on_conflict_do_nothing())


_CYCLE_STATUS = select(cycles.c.status).where(cycles.c.cycle_date == bindparam("cycle_date"))
_CYCLE_STATUS_KEY_SHARE = _CYCLE_STATUS.with_for_update(read=True, key_share=True)


def enter_open_cycle(tx: Tx, *, pin: bool = True) -> date:
    """Make sure the cycle of ``tx.now`` exists and is open, and keep it open until commit.

    On PostgreSQL the writer holds the cycle row FOR KEY SHARE (the lightest share lock,
    which still conflicts with FOR UPDATE), so closing
    waits for every writer in flight and no entry can commit into a closed cycle.
    On SQLite the single writer lock gives the same guarantee. A closed cycle is refused
    ``CycleClosed``: a timing error, which the unit's runner retries once the cycle has ended.
    """
    cycle_date = cycle_date_for(tx.now, tx.settings)
    query, key = (_CYCLE_STATUS_KEY_SHARE if tx.is_postgres else _CYCLE_STATUS), {"cycle_date": cycle_date}
    status = tx.session.execute(query, key).scalar_one_or_none()
    engine = tx.session.get_bind()
    # the first entry's cut is the one recorded (``pin``: this unit may post; a quote writes nothing)
    if pin and engine not in _PINNED and pin_cycle_settings(tx):
        _PINNED.add(engine)  # final: the record never changes once the network has an entry
    if status is None:  # the day's first writer makes the cycle (a twin may race it: no conflict either way)
        _ensure_cycle(tx, cycle_date)
        status = tx.session.execute(query, key).scalar_one()
    if status != "open":
        error = CycleClosed(f"cycle {cycle_date.isoformat()} is closed; no entry can be posted into it")
        # The unit took its time in a day that has ended since (settled at midnight while it ran): run
        # again from then on, it posts into the open cycle (``Database.run_in_transaction``).
        error.retry_from = cycle_end(cycle_date, tx.settings)
        raise error
    return cycle_date


def enter_open_cycle_once_posted(tx: Tx) -> date | None:
    """``enter_open_cycle`` for a unit that may post nothing (a merge of a member without points, an
    erasure with nothing to forfeit), taken as every writer takes it, before the members' locks; on a
    network without a single entry, None and no cycle entered.

    There the unit can post nothing (no member has a point before the first entry), and entering
    would leave a ``cycles`` row before the network's first cycle (the business day of its first entry,
    ``settlement.runs.first_cycle``): never settled, so open for ever, it would keep every later
    settlement from keeping its ledger position and stay in reports as unsettled. If the network's first
    entry commits between this look and the unit's locks and gives it something to post after all, the
    unit calls ``enter_open_cycle`` then, holding its members' locks (close_cycle takes none of them)."""
    if tx.session.execute(select(Entry.id).limit(1)).first() is None:
        return None
    return enter_open_cycle(tx)


def close_cycle(tx: Tx, cycle_date: date) -> bool:
    """Close a cycle (idempotent). Returns True if this call closed it."""
    _ensure_cycle(tx, cycle_date)
    query = select(cycles.c.status).where(cycles.c.cycle_date == cycle_date)
    if tx.is_postgres:
        query = query.with_for_update()
    if tx.session.execute(query).scalar_one() == "closed":
        return False
    tx.session.execute(
        update(cycles).where(cycles.c.cycle_date == cycle_date).values(status="closed", closed_at=tx.now)
    )
    return True


# the engines (one per network handle) whose process has found the record final and its own
_PINNED: weakref.WeakSet = weakref.WeakSet()


class CycleSettingsChanged(ConfigurationError):
    """The process was started with another time zone, cut-off or currency than the network's ledger has."""


# what the network's cycles are cut by, and the currency its amounts are in: each setting, its variable,
# its value as kept, and what another value would do
_CYCLE_SETTINGS = (("timezone", "POINTSNET_TIMEZONE", lambda settings: settings.timezone),
                   ("cycle_cutoff_minutes", "POINTSNET_CYCLE_CUTOFF_MINUTES",
                    lambda settings: str(settings.cycle_cutoff_minutes)),
                   ("currency", "POINTSNET_CURRENCY", lambda settings: settings.currency))
_CUT_BY, _KEPT_AS = "this network's cycles are cut by", {"currency": "this network's amounts are in"}
_MOVED = "other values would move the boundaries of cycles already posted into and settled"
_WOULD = {"currency": "another currency would read every amount of the ledger in the wrong unit (minor units of "
                      "another size: an earn's points, a settlement's money)"}


def pin_cycle_settings(tx: Tx) -> bool:
    """Keep the time zone and cut-off the network's cycles are cut by, and the currency its amounts are in,
    and refuse to run with others.

    Checked when a process starts, and by every writer of a process until the network has an entry
    (True: the record is final, and the process's values are the record's). Once the ledger has an entry,
    other values are refused with CycleSettingsChanged (a configuration error naming the variable):
    cycles would begin and end elsewhere than those already posted into, closed, settled and signed —
    an earn could fall into a closed cycle, a day be settled twice or not at all. Before the first
    entry nothing is cut yet and the new values replace the old, so the record always names the cut
    of the first entry: a process that started with the record's values before another start replaced
    them (a command run from a shell with another zone) still posts the first entry under its own
    values, and records them with it. The record's rows are share-locked while this runs (PostgreSQL):
    two first entries cut by two zones cannot both be posted."""
    wanted = {name: (variable, value(tx.settings)) for name, variable, value in _CYCLE_SETTINGS}
    kept = _kept(tx, wanted, lock=True)
    changed = _changed(wanted, kept)
    posted = tx.session.execute(select(Entry.id).limit(1)).first() is not None
    if changed and posted:
        raise _refusal(wanted, kept, changed)
    if len(kept) == len(wanted) and not changed:
        return posted
    insert = pg_insert if tx.is_postgres else sqlite_insert
    for name, (_variable, value) in wanted.items():
        statement = insert(NetworkSetting.__table__).values(name=name, value=value, set_at=tx.now)
        tx.session.execute(statement.on_conflict_do_update(index_elements=["name"], set_={
            "value": value, "set_at": tx.now}) if name in changed else statement.on_conflict_do_nothing())
    kept = _kept(tx, wanted)  # two processes starting at once on a new network: the first one's stay
    if _changed(wanted, kept):
        raise _refusal(wanted, kept, _changed(wanted, kept))
    return posted


def check_cycle_settings(tx: Tx) -> None:
    """``pin_cycle_settings`` for a process that only reads (``pointsnet verify``, reports, listings; a
    read-only replica): the same refusal once the ledger has an entry and the record names other values,
    and nothing written — a missing record is left for the next writer to make."""
    wanted = {name: (variable, value(tx.settings)) for name, variable, value in _CYCLE_SETTINGS}
    kept = _kept(tx, wanted)
    changed = _changed(wanted, kept)
    if changed and tx.session.execute(select(Entry.id).limit(1)).first() is not None:
        raise _refusal(wanted, kept, changed)


def _kept(tx: Tx, wanted: dict, *, lock: bool = False) -> dict[str, str]:
    query = select(NetworkSetting.name, NetworkSetting.value).where(NetworkSetting.name.in_(list(wanted)))
    # FOR SHARE: writers agreeing with the record do not wait for each other; one changing it waits for
    # them (and two changing it at once: PostgreSQL aborts one, retried, which then sees the other's entry)
    return dict(tx.session.execute(query.with_for_update(read=True) if lock and tx.is_postgres else query).all())


def _changed(wanted: dict, kept: dict) -> list[str]:
    return [name for name, (_variable, value) in wanted.items() if kept.get(name, value) != value]


def _refusal(wanted: dict, kept: dict, changed: list[str]) -> CycleSettingsChanged:
    named = "; ".join(f"{wanted[name][0]} is {wanted[name][1]!r}, but {_KEPT_AS.get(name, _CUT_BY)} {kept[name]!r}"
                      for name in changed)
    why = list(dict.fromkeys(_WOULD.get(name, _MOVED) for name in changed))
    return CycleSettingsChanged(f"{named}: {'; '.join(why)}; start with the network's own (operations.md, "
                                "\"Time zone and cut-off\")")
