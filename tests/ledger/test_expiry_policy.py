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
