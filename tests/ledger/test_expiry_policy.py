"""Expiry policies: lots expire exactly at the policy's boundary in the network's time zone."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from shared.config import Settings
from shared.db.types import FAR_FUTURE
from shared.ledger.expiry_policy import expires_at
from tests.factories import make_member, make_partner

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc


@pytest.mark.parametrize("earned,policy,expected", [
    # 2026-11-20 10:00 in Shanghai
    (datetime(2026, 11, 20, 2, tzinfo=UTC), "rolling:12", datetime(2027, 11, 20, 2, tzinfo=UTC)),
    (datetime(2026, 11, 20, 2, tzinfo=UTC), "days:30", datetime(2026, 12, 20, 2, tzinfo=UTC)),
    # end of the month of the 12-month anniversary: local midnight starting 2027-12-01
    (datetime(2026, 11, 20, 2, tzinfo=UTC), "end_of_month:12", datetime(2027, 11, 30, 16, tzinfo=UTC)),
    (datetime(2026, 11, 20, 2, tzinfo=UTC), "end_of_quarter:12", datetime(2027, 12, 31, 16, tzinfo=UTC)),
    (datetime(2026, 11, 20, 2, tzinfo=UTC), "end_of_year:12", datetime(2027, 12, 31, 16, tzinfo=UTC)),
    # 2026-01-31 20:00 UTC is already 1 February in Shanghai: the local month counts
    (datetime(2026, 1, 31, 20, tzinfo=UTC), "end_of_month:1", datetime(2026, 3, 31, 16, tzinfo=UTC)),
    # 31 January + 1 month is the end of February
    (datetime(2026, 1, 30, 16, tzinfo=UTC), "rolling:1", datetime(2026, 2, 27, 16, tzinfo=UTC)),
    (datetime(2026, 11, 20, 2, tzinfo=UTC), "never", FAR_FUTURE),
])
def test_policy_boundaries(earned, policy, expected):
    assert expires_at(earned, policy, SHANGHAI) == expected


def test_unknown_policies_are_refused():
    for policy in ("monthly", "rolling:0", "end_of_week:2", "days:-1"):
        with pytest.raises(ValueError):
            Settings(expiry_policy=policy)


def test_lots_expire_exactly_at_the_boundary(network, clock):
    network.settings.expiry_policy = "end_of_month:1"
    partner = make_partner(network)
    member = make_member(network, partner)
    lot = network.earn(partner, member, "e1", points=100)["lots"][0]
    boundary = datetime.fromisoformat(lot["expires_at"])
    assert boundary == datetime(2026, 12, 31, 16, tzinfo=UTC)  # midnight starting 2027 in Shanghai
    clock.set(boundary - timedelta(seconds=1))
    network.burn(partner, member, "b1", 30)  # spends from the expiring lot first, just before it expires
    assert network.expire_lots() == 0 and network.balance(member)["available"] == 70
    clock.set(boundary)
    assert network.expire_lots() == 70
    assert network.expire_lots() == 0  # running again posts nothing new
    assert network.balance(member)["available"] == 0


LONDON = ZoneInfo("Europe/London")


def last_day(expiry: datetime, zone: ZoneInfo):
    """The last local day points can be used: the day of the instant before they expire."""
    return (expiry - timedelta(microseconds=1)).astimezone(zone).date().isoformat()


@pytest.mark.parametrize("earned,local_expiry", [
    # summer time to winter time (25 October 2026): 30 local days, not 30 × 24 h (which ends at 23:30 on the 18th)
    (datetime(2026, 10, 19, 23, 30, tzinfo=UTC), datetime(2026, 11, 19, 0, 30)),
    # winter time to summer time (29 March 2026): not 00:30 on 20 April, a day more than in May
    (datetime(2026, 3, 20, 23, 30, tzinfo=UTC), datetime(2026, 4, 19, 23, 30)),
    # no change in between: the same
    (datetime(2026, 5, 19, 22, 30, tzinfo=UTC), datetime(2026, 6, 18, 23, 30)),
])
def test_days_policy_counts_local_days_across_daylight_saving(earned, local_expiry):
    expiry = expires_at(earned, "days:30", LONDON)
    assert expiry.tzinfo is not None and expiry.utcoffset() == timedelta(0)
    assert expiry.astimezone(LONDON).replace(tzinfo=None) == local_expiry
    assert last_day(expiry, LONDON) == local_expiry.date().isoformat()


def test_days_policy_on_a_wall_time_the_clocks_skip_or_repeat():
    """As rolling:N: the earn's wall time N local days later, read as zoneinfo reads it with the earn's
    fold. 01:30 on 29 March 2026 does not exist in London: the points expire at the instant the old
    clock would have shown it (02:30 BST). 01:30 on 25 October 2026 happens twice: the first of the two."""
    skipped = expires_at(datetime(2026, 2, 27, 1, 30, tzinfo=UTC), "days:30", LONDON)
    assert skipped == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    repeated = expires_at(datetime(2026, 9, 25, 0, 30, tzinfo=UTC), "days:30", LONDON)  # 01:30 BST
    assert repeated == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 BST, not 01:30 GMT an hour later
    assert repeated == expires_at(datetime(2026, 9, 25, 0, 30, tzinfo=UTC), "rolling:1", LONDON)


@pytest.mark.parametrize("policy", ["days:882", "rolling:29"])
def test_an_earn_in_a_repeated_hours_second_pass_never_expires_before_one_earned_in_its_first(policy):
    """Earned at 01:30 GMT on 30 October 2022, the second pass of London's repeated hour (fold 1), a lot whose
    wall time falls in the hour the clocks skip (01:30 on 30 March 2025) expires at 02:30 BST, as every such
    time is read (docs/operations.md): the offset before the change. Until 2026-12-07 the earn's fold was kept
    and it expired at 00:30 UTC, an hour before the lot earned an hour earlier (at 01:30 BST)."""
    first = expires_at(datetime(2022, 10, 30, 0, 30, tzinfo=UTC), policy, LONDON)  # 01:30 BST
    second = expires_at(datetime(2022, 10, 30, 1, 30, tzinfo=UTC), policy, LONDON)  # 01:30 GMT, an hour later
    assert first == second == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    # a wall time the clocks repeat keeps the earn's pass: the second pass's earn, the second 01:30
    assert expires_at(datetime(2021, 10, 31, 1, 30, tzinfo=UTC), "days:364", LONDON) == \
        datetime(2022, 10, 30, 1, 30, tzinfo=UTC)


def test_an_earn_in_a_london_network_carries_the_local_days_expiry(database_url, clock, tmp_path):
    """Through the ledger: the lot an earn writes expires 30 local days later, and the expiry job
    leaves it alone on its last day."""
    from pathlib import Path

    from shared.network import Network

    network = Network(Settings(data_dir=Path(tmp_path) / "london", timezone="Europe/London",
                               expiry_policy="days:30"), database_url=database_url, clock=clock, pool_size=5)
    try:
        clock.set(datetime(2026, 10, 19, 23, 30, tzinfo=UTC))  # 00:30 BST on 20 October
        partner = make_partner(network)
        member = make_member(network, partner)
        lot = network.earn(partner, member, "e1", points=100)["lots"][0]
        expiry = datetime.fromisoformat(lot["expires_at"])
        assert expiry == datetime(2026, 11, 19, 0, 30, tzinfo=UTC)  # 00:30 GMT on 19 November
        clock.set(datetime(2026, 11, 19, 0, 0, tzinfo=UTC))  # 19 November, still usable
        assert network.expire_lots() == 0 and network.balance(member)["available"] == 100
        clock.set(expiry)
        assert network.expire_lots() == 100
    finally:
        network.close()
