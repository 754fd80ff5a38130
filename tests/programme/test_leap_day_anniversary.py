"""A member upgraded on 29 February keeps that day in its yearly rhythm: reviewed on 28 February in
common years and on 29 February again in leap years, not on the 28th for good."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from shared.models import Member
from shared.programme import jobs
from shared.programme.tiers import current_tier
from tests.factories import make_member, make_partner

ZONE = ZoneInfo("Asia/Shanghai")  # the network's time zone in the tests


def local(year, month, day):
    return datetime(year, month, day, 10, tzinfo=ZONE)


def anniversary(network, member):
    at = network.tx(lambda tx: tx.session.execute(
        select(Member.tier_anniversary_at).where(Member.id == member)).scalar_one(), readonly=True)
    return at.astimezone(ZONE).date()


def test_the_review_after_a_leap_day_upgrade_comes_back_to_29_february_in_the_next_leap_year(network, clock, settings):
    assert settings.zone == ZONE
    partner = make_partner(network)
    member = make_member(network, partner)
    clock.set(local(2028, 2, 29))
    network.earn(partner, member, "up", points=100)
    seen = [anniversary(network, member)]
    for year in (2029, 2030, 2031):
        clock.set(local(year, 2, 20))
        network.earn(partner, member, f"keep-{year}", points=100)  # stays silver at each review
        clock.set(local(year, 2, 28) + timedelta(days=settings.tiers.grace_days, hours=1))
        assert jobs.review_tiers(network) == 1
        seen.append(anniversary(network, member))
    assert [(d.year, d.month, d.day) for d in seen] == [(2029, 2, 28), (2030, 2, 28), (2031, 2, 28), (2032, 2, 29)]
    assert network.tx(lambda tx: current_tier(tx, member), readonly=True) == "silver"


def test_a_review_years_late_lands_on_the_leap_day_too(network, clock, settings):
    partner = make_partner(network)
    member = make_member(network, partner)
    clock.set(local(2028, 2, 29))
    network.earn(partner, member, "up", points=100)
    clock.set(local(2031, 2, 20))
    network.earn(partner, member, "keep", points=100)
    clock.set(local(2031, 2, 28) + timedelta(days=settings.tiers.grace_days, hours=1))  # three reviews missed
    assert jobs.review_tiers(network) == 1
    assert anniversary(network, member) == local(2032, 2, 29).date()
    assert jobs.review_tiers(network) == 0
