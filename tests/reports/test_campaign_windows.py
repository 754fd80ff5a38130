"""Campaign effect for any window the rules accept: a campaign written as running to 9999-12-31 (or
from 0001-01-01) is read over the cycles reports can hold (Period.EARLIEST … LATEST), not refused, and
it does not make every report of its partner fail."""

import json
from datetime import date, datetime, timezone

import pytest

from shared.reports.partner import partner_report
from shared.reports.period import Period
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner


@pytest.mark.parametrize("starts_on, ends_on, during, before", [
    ("2026-11-01", "9999-12-31", ("2026-11-01", "8999-12-31"), ("2000-01-01", "2026-10-31")),
    ("0001-01-01", "2026-12-31", ("2000-01-01", "2026-12-31"), ("2000-01-01", "1999-12-31")),  # nothing before
    ("2026-11-01", "2026-12-31", ("2026-11-01", "2026-12-31"), ("2026-09-01", "2026-10-31")),
])
def test_an_open_ended_campaign_is_read_within_the_reports_bounds(network, clock, starts_on, ends_on, during, before):
    shop = make_partner(network, "Shop")
    rules = {"campaigns": [{"id": "always", "name": "Always double", "starts_on": starts_on, "ends_on": ends_on,
                            "multiplier": "2"}]}
    network.tx(lambda tx: set_rules(tx, shop, json.dumps(rules)))
    member = make_member(network, shop)
    network.earn(shop, member, "e1", amount=10000)                    # 2026-11-20, settled: read from roll-ups
    clock.set(datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc))
    network.settle(date(2026, 11, 20))
    network.earn(shop, member, "e2", amount=5000)                     # 2026-11-21, open: read live
    period = Period.parse("2026-11-20", "2026-11-21")
    reports = [network.tx(lambda tx: partner_report(tx, shop, period, rollup=rollup), readonly=True)
               for rollup in (True, False)]
    assert reports[0] == reports[1]
    [campaign] = reports[0]["campaigns"]
    assert (campaign["starts_on"], campaign["ends_on"]) == (starts_on, ends_on)   # as the rules state it
    assert (campaign["during"]["from"], campaign["during"]["to"]) == during
    assert (campaign["during"]["earns"], campaign["during"]["points"]) == (2, 300)
    assert (campaign["before"]["from"], campaign["before"]["to"], campaign["before"]["earns"]) == (*before, 0)
    assert campaign["campaign_points"] == 150
