"""Expiry reminders: once at 30 and once at 7 days before the points expire, never for spent points."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from shared.models import ExpiryReminder
from shared.programme import jobs
from tests.factories import make_member, make_partner

EXPIRES = datetime(2027, 11, 20, 2, tzinfo=timezone.utc)  # rolling:12 from the fixed clock's start


def reminders(network):
    return network.tx(lambda tx: [(r.member_id, r.expires_on.isoformat(), r.days_before, r.points) for r in
                                  tx.session.execute(select(ExpiryReminder).order_by(ExpiryReminder.created_at,
                                                                                     ExpiryReminder.days_before))
                                  .scalars()], readonly=True)


def test_reminders_at_30_and_7_days_once_each(network, clock, settings):
    assert settings.expiry_reminder_days == (30, 7)
    settings.programme_batch_size = 1
    partner = make_partner(network)
    member, spender, holder = (make_member(network, partner) for _ in range(3))
    network.earn(partner, member, "m-1", points=100)
    network.earn(partner, member, "m-2", points=50)  # same expiry day: one reminder for both lots
    network.earn(partner, spender, "s-1", points=80)
    network.burn(partner, spender, "s-b", points=80)  # all spent: nothing to remind of
    network.earn(partner, holder, "h-1", points=70)

    clock.set(EXPIRES - timedelta(days=30, seconds=1))
    assert jobs.remind_expiring(network) == 0
    clock.set(EXPIRES - timedelta(days=30))
    network.hold(partner, holder, "h-hold", points=20)  # held points do not expire while held
    assert jobs.remind_expiring(network) == 2
    assert jobs.remind_expiring(network) == 0
    day = EXPIRES.astimezone(settings.zone).date().isoformat()
    assert sorted(reminders(network)) == sorted([(member, day, 30, 150), (holder, day, 30, 50)])

    clock.set(EXPIRES - timedelta(days=20))
    assert jobs.remind_expiring(network) == 0
    network.burn(partner, member, "m-b", points=120)
    clock.set(EXPIRES - timedelta(days=7))
    assert jobs.remind_expiring(network) == 2
    assert jobs.remind_expiring(network) == 0
    assert (member, day, 7, 30) in reminders(network) and len(reminders(network)) == 4
    clock.set(EXPIRES - timedelta(days=1))
    assert jobs.remind_expiring(network) == 0


def test_a_missed_reminder_gives_way_to_the_nearer_one(network, clock, settings):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "e", points=100)
    clock.set(EXPIRES - timedelta(days=5))  # the job did not run 30 days before
    assert jobs.remind_expiring(network) == 1
    assert [r[2] for r in reminders(network)] == [7]
    clock.set(EXPIRES + timedelta(seconds=1))
    assert jobs.remind_expiring(network) == 0


def test_a_reminder_names_every_point_expiring_that_local_day(network, clock, settings):
    # the 30-day reminder is made when the day's first lot comes within 30 days; a lot earned later
    # the same local day expires that day too, and the key (member, date, days) allows no second one
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "morning", points=100)             # 10:00 Shanghai
    clock.advance(hours=6)
    network.earn(partner, member, "afternoon", points=50)            # 16:00 Shanghai, the same local day
    clock.advance(hours=10)
    network.earn(partner, member, "next-day", points=20)             # 02:00 Shanghai, the next local day
    clock.set(EXPIRES - timedelta(days=30))
    assert jobs.remind_expiring(network) == 1
    day = EXPIRES.astimezone(settings.zone).date().isoformat()
    assert reminders(network) == [(member, day, 30, 150)]
    clock.advance(hours=6)
    assert jobs.remind_expiring(network) == 0                         # the afternoon's lot is reminded of already
    clock.advance(hours=10)
    assert jobs.remind_expiring(network) == 1
    assert reminders(network)[-1][1:] == ((EXPIRES + timedelta(days=1)).astimezone(settings.zone).date().isoformat(),
                                          30, 20)


def test_after_a_merge_the_survivor_is_not_reminded_again_of_the_duplicates_points(network, clock):
    from shared.programme.merge import merge_members

    partner = make_partner(network)
    survivor, duplicate, both = (make_member(network, partner) for _ in range(3))
    network.earn(partner, duplicate, "d-1", points=100)
    network.earn(partner, both, "b-1", points=40)
    clock.set(EXPIRES - timedelta(days=30))
    assert jobs.remind_expiring(network) == 2                         # the duplicate's 100, the other's 40
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    network.tx(lambda tx: merge_members(tx, survivor, both))          # both reminded for that day: one is kept
    clock.advance(hours=1)                                            # the next hourly run, the same day
    assert jobs.remind_expiring(network) == 0
    kept = [r for r in reminders(network) if r[0] == survivor]
    assert [(r[1], r[2]) for r in kept] == [(EXPIRES.astimezone(network.settings.zone).date().isoformat(), 30)]
    clock.set(EXPIRES - timedelta(days=7))
    assert jobs.remind_expiring(network) == 1                         # the 7-day one still comes, for all 140
    assert reminders(network)[-1] == (survivor, kept[0][1], 7, 140)
