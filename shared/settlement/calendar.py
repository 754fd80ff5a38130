"""Business days for payment dates.

Monday to Friday are business days and Saturday and Sunday are not, except for the days the
``holidays`` table names: a ``holiday`` is a weekday on which no payment is made, a ``working_day``
a Saturday or Sunday on which payments are made (a make-up working day, as the Chinese calendar moves
a weekend's work to bridge a holiday). Operators keep the table with ``pointsnet clearing calendar``.

A settlement's payment date is fixed when its cycle is settled (it is in the signed files): a day
added or removed later moves the payment dates of cycles settled after the change, never of one
already settled.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import delete, func, insert, select

from shared.clock import parse_date
from shared.db.database import Tx
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import Holiday, Settlement
from shared.reports.period import EARLIEST, LATEST

HOLIDAY, WORKING_DAY = "holiday", "working_day"
KINDS = (HOLIDAY, WORKING_DAY)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")  # whatever the locale
NAME_LENGTH = 200


class InvalidCalendarDay(ValidationFailed):
    code = "invalid_calendar_day"


class CalendarDayTaken(Conflict):
    code = "calendar_day_taken"


class UnknownCalendarDay(NotFound):
    code = "unknown_calendar_day"


@dataclass(frozen=True)
class Calendar:
    """The exceptions to the week over some span of days."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    working_days: frozenset[date] = field(default_factory=frozenset)

    def is_business_day(self, day: date) -> bool:
        if day in self.working_days:
            return True
        return day.weekday() < 5 and day not in self.holidays


def add_business_days(start: date, days: int, calendar: Calendar) -> date:
    """The date ``days`` business days after ``start`` (0: ``start`` itself if it is one, else the next)."""
    current = start
    if days == 0:
        while not calendar.is_business_day(current):
            current += timedelta(days=1)
        return current
    while days:
        current += timedelta(days=1)
        if calendar.is_business_day(current):
            days -= 1
    return current


def calendar_between(tx: Tx, start: date, end: date) -> Calendar:
    rows = tx.session.execute(select(Holiday.day, Holiday.kind).where(Holiday.day >= start, Holiday.day <= end)).all()
    return Calendar(frozenset(day for day, kind in rows if kind == HOLIDAY),
                    frozenset(day for day, kind in rows if kind == WORKING_DAY))


def payment_date(tx: Tx, cycle_date: date) -> date:
    lag = tx.settings.settlement_lag_business_days
    return add_business_days(cycle_date, lag, calendar_between(tx, cycle_date, cycle_date + timedelta(days=60 + lag * 3)))


def _row(row) -> dict:
    return {"day": row.day.isoformat(), "weekday": WEEKDAYS[row.day.weekday()], "kind": row.kind, "name": row.name}


def calendar_days(tx: Tx, *, year: int | None = None, start: date | None = None, end: date | None = None,
                  limit: int | None = None) -> list[dict]:
    """The calendar's entries in day order: of one year, from ``start`` to ``end``, or all."""
    query = select(Holiday).order_by(Holiday.day).limit(limit)
    if year is not None:
        start, end = date(year, 1, 1), date(year, 12, 31)
    if start is not None:
        query = query.where(Holiday.day >= start)
    if end is not None:
        query = query.where(Holiday.day <= end)
    return [_row(row) for row in tx.session.execute(query).scalars()]


def _checked(day: date, kind: str, name: str) -> str:
    """The name to keep, or InvalidCalendarDay saying what is wrong with the entry."""
    if kind not in KINDS:
        raise InvalidCalendarDay(f"a calendar day is a holiday or a working_day, not {kind!r}")
    if not EARLIEST <= day <= LATEST:  # the days a cycle, and so a payment date, can fall on
        raise InvalidCalendarDay(f"calendar days lie between {EARLIEST} and {LATEST}, not {day}")
    name = " ".join(name.split())
    if not name:
        raise InvalidCalendarDay("a calendar day needs a name (the holiday's, or the one a working day makes up for)")
    if len(name) > NAME_LENGTH:
        raise InvalidCalendarDay(f"a calendar day's name is at most {NAME_LENGTH} characters, not {len(name)}")
    weekend = day.weekday() >= 5
    if kind == HOLIDAY and weekend:
        raise InvalidCalendarDay(f"{day} is a {WEEKDAYS[day.weekday()]}, never a business day: a holiday there would change "
                                 "nothing (a working day on a weekend is kind working_day)")
    if kind == WORKING_DAY and not weekend:
        raise InvalidCalendarDay(f"{day} is a {WEEKDAYS[day.weekday()]}, a business day already: a working day is a Saturday "
                                 "or Sunday on which payments are made")
    return name


def _due_on(tx: Tx, day: date) -> int:
    """The network's settlements still due on ``day``: from its first cycle on (``runs.of_the_network``),
    as the overdue list counts them."""
    from shared.settlement.runs import of_the_network  # runs reads this module's payment dates

    return tx.session.execute(select(func.count()).select_from(Settlement).where(
        Settlement.payment_date == day, Settlement.status == "due",
        of_the_network(Settlement.cycle_date))).scalar_one()


def add_calendar_day(tx: Tx, day: date, name: str, kind: str = HOLIDAY) -> dict:
    """Add a holiday or a working day. A day the calendar names already is refused (remove it first):
    two people keeping the calendar should not overwrite each other's entry unseen. The answer counts
    the settlements still due on that day (settled before the change, they keep their payment date)."""
    name = _checked(day, kind, name)
    taken = tx.session.get(Holiday, day, with_for_update=True)
    if taken is not None:
        raise CalendarDayTaken(f"{day} is already in the calendar: {taken.kind} {taken.name!r}; remove it first")
    tx.session.execute(insert(Holiday).values(day=day, name=name, kind=kind))
    return {"day": day.isoformat(), "weekday": WEEKDAYS[day.weekday()], "kind": kind, "name": name,
            "settlements_due_that_day": _due_on(tx, day)}


def remove_calendar_day(tx: Tx, day: date) -> dict:
    row = tx.session.get(Holiday, day, with_for_update=True)
    if row is None:
        raise UnknownCalendarDay(f"{day} is not in the calendar")
    removed = _row(row)
    tx.session.execute(delete(Holiday).where(Holiday.day == day))
    return {**removed, "settlements_due_that_day": _due_on(tx, day)}


IMPORT_COLUMNS = "day,name[,kind]"
IMPORT_LINES = 10_000  # some decades of any country's calendar; one statement reads the days it names


def import_calendar(tx: Tx, text: str) -> dict:
    """Add the days of a CSV (header ``day,name`` and optionally ``kind``, holiday when empty), all or
    none. A line the calendar already holds as it is (same kind and name) is left as it is, so a year's
    file can be imported again; a day the calendar holds otherwise, or listed twice, refuses the file,
    naming the line."""
    # strict: a quote left open is an error, not a field that runs on to the end of the file and takes
    # every line after it into one day's name (until 2026-12-07: one day imported, the rest lost, exit 0)
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    try:
        columns = [c.strip() for c in (reader.fieldnames or ())]
        if "day" not in columns or "name" not in columns or set(columns) - {"day", "name", "kind"}:
            raise InvalidCalendarDay(f"calendar line 1: the columns are {IMPORT_COLUMNS}, not {','.join(columns)}")
        reader.fieldnames = columns
        wanted: dict[date, tuple[str, str, int]] = {}
        for row in reader:
            line = reader.line_num
            if None in row or None in row.values():
                raise InvalidCalendarDay(f"calendar line {line}: the columns are {IMPORT_COLUMNS}")
            try:
                day = parse_date(row["day"].strip())
                kind = (row.get("kind") or "").strip() or HOLIDAY
                name = _checked(day, kind, row["name"])
            except (ValueError, InvalidCalendarDay) as exc:
                raise InvalidCalendarDay(f"calendar line {line}: {getattr(exc, 'detail', exc)}") from None
            if len(wanted) == IMPORT_LINES:
                raise InvalidCalendarDay(f"calendar line {line}: a file holds at most {IMPORT_LINES} days")
            if day in wanted:
                raise InvalidCalendarDay(f"calendar line {line}: {day} is listed on line {wanted[day][2]} too")
            wanted[day] = (kind, name, line)
    except csv.Error as exc:
        # the reader counts the lines of the records it finished: the broken one starts on the next
        raise InvalidCalendarDay(f"calendar line {reader.line_num + 1}: {exc}") from None
    if not wanted:
        return {"added": 0, "unchanged": 0}
    held = {row.day: row for row in tx.session.execute(select(Holiday).where(
        Holiday.day.in_(sorted(wanted))).with_for_update()).scalars()}
    for day, (kind, name, line) in sorted(wanted.items()):
        row = held.get(day)
        if row is not None and (row.kind, row.name) != (kind, name):
            raise CalendarDayTaken(f"calendar line {line}: {day} is already in the calendar: {row.kind} "
                                   f"{row.name!r}; remove it first")
    new = [{"day": day, "name": name, "kind": kind} for day, (kind, name, _line) in sorted(wanted.items())
           if day not in held]
    if new:
        tx.session.execute(insert(Holiday), new)
    return {"added": len(new), "unchanged": len(wanted) - len(new)}
