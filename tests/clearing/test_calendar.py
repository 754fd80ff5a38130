"""The business-day calendar of payment dates (docs/settlement-files.md, "Payment dates";
docs/operations.md, "Settlement and finance").

A settlement is paid ``POINTSNET_SETTLEMENT_LAG_BUSINESS_DAYS`` (default 1) business days after its
cycle. Monday to Friday are business days, except the holidays the calendar names; Saturday and Sunday
are not, except the make-up working days it names (as China moves a weekend's work to bridge a
holiday). ``pointsnet clearing calendar`` keeps the calendar. A payment date is fixed when its cycle is
settled: a later change to the calendar moves later cycles' dates only, and the command says how many
settlements still due keep the changed day."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from shared.models import AuditEntry, Holiday, Settlement
from shared.settlement.calendar import (CalendarDayTaken, InvalidCalendarDay, UnknownCalendarDay, add_calendar_day,
                                        calendar_days, import_calendar, payment_date, remove_calendar_day)
from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.factories import make_member, make_partner

FRIDAY = date(2026, 11, 20)  # the clock starts at 10:00 of this day, network time
SATURDAY, SUNDAY, MONDAY, TUESDAY = (date(2026, 11, d) for d in (21, 22, 23, 24))
TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")


def pay_on(network, cycle: date) -> date:
    return network.tx(lambda tx: payment_date(tx, cycle), readonly=True)


def settled_payment_dates(network, cycle: date) -> set[date]:
    return set(network.tx(lambda tx: tx.session.execute(select(Settlement.payment_date).where(
        Settlement.cycle_date == cycle)).scalars().all(), readonly=True))


def cli(network, clock, database_url, *args):
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}
    return run_pointsnet(*args, env=env)


def one_line_error(done, text: str) -> None:
    assert done.returncode != 0 and done.stdout == "", (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert text in done.stderr, done.stderr


def test_a_friday_cycle_is_paid_on_monday_a_holiday_moves_it_a_working_day_brings_it_forward(network):
    assert pay_on(network, FRIDAY) == MONDAY
    network.tx(lambda tx: add_calendar_day(tx, MONDAY, "Founders' Day"))
    assert pay_on(network, FRIDAY) == TUESDAY
    network.tx(lambda tx: add_calendar_day(tx, SUNDAY, "Make-up for Founders' Day", "working_day"))
    assert pay_on(network, FRIDAY) == SUNDAY
    network.tx(lambda tx: add_calendar_day(tx, SATURDAY, "Make-up for the bridge day", "working_day"))
    assert pay_on(network, FRIDAY) == SATURDAY
    assert pay_on(network, SATURDAY) == SUNDAY  # a cycle on a working day: the next business day
    network.tx(lambda tx: remove_calendar_day(tx, SATURDAY))
    network.tx(lambda tx: remove_calendar_day(tx, SUNDAY))
    assert pay_on(network, FRIDAY) == TUESDAY


def test_a_settled_cycle_keeps_its_payment_date_and_the_change_counts_what_is_due_that_day(network, clock):
    partner = make_partner(network, "CoffeeCo", **TERMS)
    network.earn(partner, make_member(network, partner), "c1", points=500)
    network.tx(lambda tx: add_calendar_day(tx, MONDAY, "Founders' Day"))
    clock.advance(days=1)
    network.settle(FRIDAY)
    assert settled_payment_dates(network, FRIDAY) == {TUESDAY}
    due = len(network.tx(lambda tx: tx.session.execute(select(Settlement).where(
        Settlement.cycle_date == FRIDAY)).scalars().all(), readonly=True))
    assert due >= 2  # the partner and the network
    removed = network.tx(lambda tx: remove_calendar_day(tx, MONDAY))
    added = network.tx(lambda tx: add_calendar_day(tx, TUESDAY, "Storm closure"))
    assert removed["settlements_due_that_day"] == 0
    assert added["settlements_due_that_day"] == due  # still due on Tuesday: the signed files say so
    assert settled_payment_dates(network, FRIDAY) == {TUESDAY}


@pytest.mark.parametrize("day, kind, name, message", [
    (SATURDAY, "holiday", "x", "2026-11-21 is a Saturday, never a business day"),
    (MONDAY, "working_day", "x", "2026-11-23 is a Monday, a business day already"),
    (MONDAY, "holiday", "   ", "a calendar day needs a name"),
    (MONDAY, "holiday", "x" * 201, "at most 200 characters, not 201"),
    (MONDAY, "bank_holiday", "x", "a holiday or a working_day, not 'bank_holiday'"),
    (date(1999, 12, 31), "holiday", "x", "calendar days lie between 2000-01-01 and 8999-12-31"),
])
def test_an_entry_that_could_not_mean_what_it_says_is_refused(network, day, kind, name, message):
    with pytest.raises(InvalidCalendarDay) as refused:
        network.tx(lambda tx: add_calendar_day(tx, day, name, kind))
    assert refused.value.code == "invalid_calendar_day" and message in str(refused.value)
    assert network.tx(calendar_days, readonly=True) == []


def test_a_day_already_in_the_calendar_is_not_overwritten(network):
    network.tx(lambda tx: add_calendar_day(tx, MONDAY, "Founders'   Day "))
    with pytest.raises(CalendarDayTaken) as refused:
        network.tx(lambda tx: add_calendar_day(tx, MONDAY, "Another name"))
    assert refused.value.code == "calendar_day_taken"
    assert str(refused.value) == "2026-11-23 is already in the calendar: holiday \"Founders' Day\"; remove it first"
    with pytest.raises(UnknownCalendarDay):
        network.tx(lambda tx: remove_calendar_day(tx, TUESDAY))
    assert network.tx(calendar_days, readonly=True) == [
        {"day": "2026-11-23", "weekday": "Monday", "kind": "holiday", "name": "Founders' Day"}]


YEAR = ("\ufeffday,name,kind\n2026-10-01,National Day,\n2026-10-02,National Day,holiday\n"
        "2026-10-10,Make-up for National Day,working_day\n")


def test_a_years_file_is_imported_once_and_again_changes_nothing(network):
    assert network.tx(lambda tx: import_calendar(tx, YEAR)) == {"added": 3, "unchanged": 0}
    assert network.tx(lambda tx: import_calendar(tx, YEAR + "2026-12-25,Christmas Day,\n")) == {"added": 1,
                                                                                              "unchanged": 3}
    assert [(d["day"], d["kind"]) for d in network.tx(lambda tx: calendar_days(tx, year=2026), readonly=True)] == [
        ("2026-10-01", "holiday"), ("2026-10-02", "holiday"), ("2026-10-10", "working_day"),
        ("2026-12-25", "holiday")]
    assert network.tx(lambda tx: calendar_days(tx, year=2027), readonly=True) == []


@pytest.mark.parametrize("text, message", [
    ("day,name\n2026-10-01,National Day\n2026-10-03,National Day\n", "calendar line 3: 2026-10-03 is a Saturday"),
    ("day,name\n2026-10-01,National Day\n2026-10-01,Again\n", "calendar line 3: 2026-10-01 is listed on line 2 too"),
    ("day,name\n2026-10-01,National Day,extra\n", "calendar line 2: the columns are day,name[,kind]"),
    ("day,name\n2026-10-01\n", "calendar line 2: the columns are day,name[,kind]"),
    ("day,name\n1 Oct 2026,National Day\n", "calendar line 2: not a date YYYY-MM-DD"),
    ("date,holiday\n2026-10-01,National Day\n", "calendar line 1: the columns are day,name[,kind], not date,holiday"),
    # a quote left open took every line after it into one name (until 2026-12-07: one day added, two lost)
    ('day,name\n2027-03-01,"Spring Day\n2027-03-02,Second Day\n2027-03-03,Third Day\n', "calendar line 2: unexpected end of data"),
    ("day,name\n2026-10-01,National Day\n2026-12-25,Christmas\n", "calendar line 3: 2026-12-25 is already in the "
                                                                 "calendar: holiday 'Christmas Day'"),
])
def test_a_file_with_one_wrong_line_adds_nothing_and_names_the_line(network, text, message):
    network.tx(lambda tx: add_calendar_day(tx, date(2026, 12, 25), "Christmas Day"))
    with pytest.raises((InvalidCalendarDay, CalendarDayTaken)) as refused:
        network.tx(lambda tx: import_calendar(tx, text))
    assert message in str(refused.value), str(refused.value)
    assert [d["day"] for d in network.tx(calendar_days, readonly=True)] == ["2026-12-25"]


def test_the_command_line_keeps_the_calendar_audited_and_says_what_stays_due(network, clock, database_url, tmp_path):
    partner = make_partner(network, "CoffeeCo", **TERMS)
    network.earn(partner, make_member(network, partner), "c1", points=500)
    clock.advance(days=1)
    network.settle(FRIDAY)  # due on Monday
    added = cli(network, clock, database_url, "clearing", "calendar", "add", "2026-11-23", "Founders' Day")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["kind"] == "holiday"
    assert "settled before this change are due on 2026-11-23 and keep that payment date" in added.stderr
    made_up = cli(network, clock, database_url, "clearing", "calendar", "add", "2026-11-29", "Make-up",
                  "--working-day")
    assert made_up.returncode == 0 and made_up.stderr == "", made_up.stderr
    year = tmp_path / "2026.csv"
    year.write_text(YEAR)
    assert json.loads(cli(network, clock, database_url, "clearing", "calendar", "import", str(year)).stdout) == {
        "added": 3, "unchanged": 0}
    listed = json.loads(cli(network, clock, database_url, "clearing", "calendar", "list", "--year", "2026",
                            "--json").stdout)
    assert [(d["day"], d["weekday"], d["kind"]) for d in listed] == [
        ("2026-10-01", "Thursday", "holiday"), ("2026-10-02", "Friday", "holiday"),
        ("2026-10-10", "Saturday", "working_day"), ("2026-11-23", "Monday", "holiday"),
        ("2026-11-29", "Sunday", "working_day")]
    table = cli(network, clock, database_url, "clearing", "calendar", "list")
    assert table.returncode == 0 and "Make-up for National Day" in table.stdout and "working day" in table.stdout
    removed = cli(network, clock, database_url, "clearing", "calendar", "remove", "2026-11-29")
    assert removed.returncode == 0 and json.loads(removed.stdout)["name"] == "Make-up"
    audited = network.tx(lambda tx: [(a.action, a.target, a.user_email) for a in tx.session.execute(
        select(AuditEntry).where(AuditEntry.action.like("calendar.%")).order_by(AuditEntry.id)).scalars()],
        readonly=True)
    assert audited == [("calendar.day_added", "2026-11-23", "cli"), ("calendar.day_added", "2026-11-29", "cli"),
                       ("calendar.imported", "2026.csv", "cli"), ("calendar.day_removed", "2026-11-29", "cli")]


@pytest.mark.parametrize("args, message", [
    (("add", "23/11/2026", "x"), "DAY must be a date YYYY-MM-DD, not '23/11/2026'"),
    (("add", "2026-11-21", "x"), "2026-11-21 is a Saturday, never a business day"),
    (("add", "2026-11-23", "x", "--working-day"), "2026-11-23 is a Monday, a business day already"),
    (("remove", "2026-11-24"), "2026-11-24 is not in the calendar"),
    (("list", "--year", "99999"), "--year lies between 2000 and 8999, not 99999"),
    (("import", "no-such.csv"), "cannot read no-such.csv"),
])
def test_command_line_mistakes_are_one_line_and_change_nothing(network, clock, database_url, args, message):
    one_line_error(cli(network, clock, database_url, "clearing", "calendar", *args), message)
    assert network.tx(lambda tx: tx.session.execute(select(Holiday)).scalars().all(), readonly=True) == []



def test_a_refusal_on_the_command_line_names_its_stable_code(network, clock, database_url):
    assert cli(network, clock, database_url, "clearing", "calendar", "add", "2026-11-23", "Founders' Day").returncode == 0
    again = cli(network, clock, database_url, "clearing", "calendar", "add", "2026-11-23", "Another")
    one_line_error(again, "")
    assert again.returncode == 2 and again.stderr.startswith(
        "error: calendar_day_taken: 2026-11-23 is already in the calendar: holiday \"Founders' Day\""), again.stderr
    removed = cli(network, clock, database_url, "clearing", "calendar", "remove", "2026-11-24")
    assert removed.returncode == 2 and removed.stderr.startswith("error: unknown_calendar_day: "), removed.stderr
