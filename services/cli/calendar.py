"""The business-day calendar of payment dates: holidays and make-up working days."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from services.cli import clearing_app, err, fail, literal, show, _network, _read_csv

calendar_app = typer.Typer(help="The business-day calendar of payment dates: holidays and make-up working days.",
                           no_args_is_help=True)
clearing_app.add_typer(calendar_app, name="calendar")


def _day(text: str):
    from shared.clock import parse_date

    try:
        return parse_date(text)
    except ValueError:
        fail(f"DAY must be a date YYYY-MM-DD, not {text!r}")


def _audited(action: str, change):
    from shared.access import audit

    def unit(tx):
        result = change(tx)
        detail = {k: v for k, v in result.items() if k not in ("day", "settlements_due_that_day")}
        audit.record(tx, None, action, result.get("day"), **detail)
        return result
    return unit


def _already_due(result: dict) -> None:
    due = result["settlements_due_that_day"]
    if due:
        err.print(f"{due} settlement{'s' if due != 1 else ''} settled before this change "
                  f"{'are' if due != 1 else 'is'} due on {result['day']} and keep{'' if due != 1 else 's'} "
                  "that payment date", highlight=False)


@calendar_app.command("list")
def calendar_list(year: Optional[int] = typer.Option(None, help="Only this year's days."),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """The holidays and make-up working days, in day order."""
    from shared.settlement.calendar import calendar_days

    if year is not None and not 2000 <= year <= 8999:
        fail(f"--year lies between 2000 and 8999, not {year}")
    rows = _network(readonly=True).tx(lambda tx: calendar_days(tx, year=year), readonly=True)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("day", "weekday", "kind", "name", title="business-day calendar")
    for row in rows:
        table.add_row(row["day"], row["weekday"], "working day" if row["kind"] == "working_day" else "holiday",
                      literal(row["name"]))
    show(table)


@calendar_app.command("add")
def calendar_add(day: str = typer.Argument(..., help="YYYY-MM-DD"),
                 name: str = typer.Argument(..., help="The holiday's name (or the one a working day makes up for)."),
                 working_day: bool = typer.Option(False, "--working-day",
                                                  help="A Saturday or Sunday on which payments are made.")) -> None:
    """Add a holiday (a weekday without payments) or, with --working-day, a make-up working day."""
    from shared.settlement.calendar import HOLIDAY, WORKING_DAY, add_calendar_day

    when = _day(day)
    kind = WORKING_DAY if working_day else HOLIDAY
    result = _network().tx(_audited("calendar.day_added", lambda tx: add_calendar_day(tx, when, name, kind)))
    _already_due(result)
    print(json.dumps(result))


@calendar_app.command("remove")
def calendar_remove(day: str = typer.Argument(..., help="YYYY-MM-DD")) -> None:
    """Remove a day from the calendar (it becomes an ordinary weekday or weekend day again)."""
    from shared.settlement.calendar import remove_calendar_day

    when = _day(day)
    result = _network().tx(_audited("calendar.day_removed", lambda tx: remove_calendar_day(tx, when)))
    _already_due(result)
    print(json.dumps(result))


@calendar_app.command("import")
def calendar_import(path: Path = typer.Argument(..., help="CSV with the columns day,name and optionally kind.")) -> None:
    """Add a file's days, all or none; days the calendar already holds as they are stay as they are."""
    from shared.access import audit
    from shared.settlement.calendar import import_calendar

    text = _read_csv(path)

    def unit(tx):
        result = import_calendar(tx, text)
        if result["added"]:
            audit.record(tx, None, "calendar.imported", path.name, **result)
        return result
    print(json.dumps(_network().tx(unit)))
