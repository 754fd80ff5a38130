"""An expiry reminder's date (`expires_on`, also in the `points.expiring` webhook) is the last local day
the points can be used: the local day of the last instant before they expire (docs/programme.md,
"Expiry reminders"). Under end-of-period expiry a lot expires at the local midnight that starts the
next period, so its date is the day before that midnight, not the day after the points are gone."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.config import Settings
from shared.models import ExpiryReminder, Lot
from shared.programme import jobs
from shared.webhooks.delivery import deliver_due
from tests.factories import make_member, make_partner
from tests.programme.conftest import LADDER
from tests.webhooks.conftest import Receiver, bodies, register

SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=Path(tmp_path) / "data", tiers=LADDER, expiry_policy="end_of_month:1",
                    webhook_allow_private_targets=True)  # the test receiver is on 127.0.0.1


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def reminders(network) -> list[tuple[str, int, int]]:
    return network.tx(lambda tx: [(r.expires_on.isoformat(), r.days_before, r.points) for r in tx.session.execute(
        select(ExpiryReminder).order_by(ExpiryReminder.created_at, ExpiryReminder.days_before)).scalars()],
        readonly=True)


def lot_expiries(network) -> list[datetime]:
    return network.tx(lambda tx: sorted(tx.session.execute(select(Lot.expires_at)).scalars()), readonly=True)


def test_end_of_month_points_are_reminded_of_with_the_last_day_they_can_be_used(network, clock, receiver):
    """Earned on 20 November under end_of_month:1: usable until the end of 31 December (they expire at
    2027-01-01T00:00+08:00). Both reminders, and their webhooks, name 2026-12-31."""
    partner = make_partner(network)
    register(network, receiver, partner)
    member = make_member(network, partner)
    network.earn(partner, member, "e-1", points=100)
    [expires_at] = lot_expiries(network)
    assert expires_at.astimezone(SHANGHAI) == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    clock.set(expires_at - timedelta(days=30))
    assert jobs.remind_expiring(network) == 1
    clock.set(expires_at - timedelta(days=7))
    assert jobs.remind_expiring(network) == 1
    assert reminders(network) == [("2026-12-31", 30, 100), ("2026-12-31", 7, 100)]
    deliver_due(network)
    expiring = [b["data"] for b in bodies(receiver.at(f"/hooks/{partner}")) if b["type"] == "points.expiring"]
    assert sorted((d["expires_on"], d["days_before"]) for d in expiring) == [("2026-12-31", 7), ("2026-12-31", 30)]
    clock.set(expires_at - timedelta(microseconds=1))  # the last instant of 31 December: still usable
    assert network.burn(partner, member, "b-1", points=100)["points"] == 100


def test_points_usable_until_the_same_last_day_are_one_reminder(network, clock, settings):
    """A lot of an earlier policy (days:41) expiring at 15:00 on 31 December and an end-of-month lot
    expiring at the midnight that ends it can both be used last on 31 December: one reminder names
    both, made when the first comes within 30 days."""
    partner = make_partner(network)
    member = make_member(network, partner)
    settings.expiry_policy = "days:41"
    clock.set(datetime(2026, 11, 20, 15, tzinfo=SHANGHAI))
    network.earn(partner, member, "rolling", points=30)
    settings.expiry_policy = "end_of_month:1"
    network.earn(partner, member, "end-of-month", points=70)
    first, last = lot_expiries(network)
    assert (first.astimezone(SHANGHAI), last.astimezone(SHANGHAI)) == (
        datetime(2026, 12, 31, 15, tzinfo=SHANGHAI), datetime(2027, 1, 1, tzinfo=SHANGHAI))
    clock.set(first - timedelta(days=30))
    assert jobs.remind_expiring(network) == 1
    clock.set(last - timedelta(days=30))  # the end-of-month lot's own 30 days: reminded of already
    assert jobs.remind_expiring(network) == 0
    assert reminders(network) == [("2026-12-31", 30, 100)]


@pytest.mark.parametrize("earned_at, expires_on", [
    (datetime(2026, 11, 20, 14, 30, tzinfo=SHANGHAI), "2026-12-20"),  # expires 14:30 on the 20th: usable that day
    (datetime(2026, 11, 20, 0, 0, tzinfo=SHANGHAI), "2026-12-19"),    # expires at the midnight that starts the 20th
])
def test_a_rolling_lot_is_reminded_of_with_its_last_day(network, clock, settings, earned_at, expires_on):
    """Rolling lots (days:30 here, as rolling:N) expiring in the day keep that day; one expiring
    exactly at local midnight was last usable the day before."""
    settings.expiry_policy = "days:30"
    partner = make_partner(network)
    member = make_member(network, partner)
    clock.set(earned_at)
    network.earn(partner, member, "e-1", points=100)
    [expires_at] = lot_expiries(network)
    clock.set(expires_at - timedelta(days=7))
    assert jobs.remind_expiring(network) == 1
    assert reminders(network) == [(expires_on, 7, 100)]
