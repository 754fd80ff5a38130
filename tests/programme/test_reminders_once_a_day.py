"""A member is never told twice on one local day about one expiry date (docs/programme.md): a late
reminder gives way to a nearer one that falls due the same day, and a date reminded of today waits."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import insert, select

from shared.db.types import new_id
from shared.models import ExpiryReminder
from shared.programme import jobs
from tests.factories import make_member, make_partner

EXPIRES = datetime(2027, 11, 20, 2, tzinfo=timezone.utc)  # rolling:12 from the fixed clock's start (10:00 local)


def reminders(network, zone):
    return network.tx(lambda tx: [(r.days_before, r.created_at.astimezone(zone).date().isoformat()) for r in
                                  tx.session.execute(select(ExpiryReminder).order_by(
                                      ExpiryReminder.created_at)).scalars()], readonly=True)


def hourly(network, clock, hours):
    for _ in range(hours):
        jobs.remind_expiring(network)
        clock.advance(hours=1)


def test_back_an_hour_before_the_7_day_moment_only_the_7_day_reminder_is_made(network, clock, settings):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "e", points=100)
    clock.set(EXPIRES - timedelta(days=7, hours=1))  # down since before the 30-day moment: 09:00 local
    hourly(network, clock, 48)
    assert reminders(network, settings.zone) == [(7, "2027-11-13")]


def test_a_late_reminder_is_made_when_the_nearer_one_falls_due_on_another_local_day(network, clock, settings):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "e", points=100)
    clock.set(EXPIRES - timedelta(days=7, hours=12))  # 22:00 local; the 7-day moment is 10:00 tomorrow
    hourly(network, clock, 48)
    assert reminders(network, settings.zone) == [(30, "2027-11-12"), (7, "2027-11-13")]


def test_a_date_reminded_of_today_gets_no_second_reminder_that_day(network, clock, settings):
    """A late 30-day reminder made earlier today (by the job before this rule) holds back the 7-day one
    until the next local day."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "e", points=100)
    made_at = EXPIRES - timedelta(days=7, hours=1)
    network.tx(lambda tx: tx.session.execute(insert(ExpiryReminder).values(
        id=new_id("rem"), member_id=member, expires_on=EXPIRES.astimezone(settings.zone).date(), days_before=30,
        points=100, first_expires_at=EXPIRES, created_at=made_at)))
    clock.set(EXPIRES - timedelta(days=7))
    hourly(network, clock, 14)  # to 23:00 local
    assert reminders(network, settings.zone) == [(30, "2027-11-13")]
    hourly(network, clock, 2)
    assert reminders(network, settings.zone) == [(30, "2027-11-13"), (7, "2027-11-14")]
