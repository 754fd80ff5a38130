"""The campaign report's occurred_at correction reads earns posted up to the occurred_at window
after a campaign's edges: the largest window the network ever posted under, not the one configured
now. An earn posted 6½ days after the campaign's last day but made on it (allowed when the window
was 7 days) still counts during the campaign after the window is cut to 3 days."""

from datetime import date, datetime, timezone

import pytest

from shared.reports.partner import partner_report
from shared.reports.period import Period
from tests.db.test_migrations import _migrate
from tests.reports.test_campaign_windows import double_days


@pytest.mark.parametrize("recorded_at_start", [True, False])
def test_an_earn_posted_under_a_larger_window_counts_during_the_campaign(network, settings, clock, database_url,
                                                                         recorded_at_start):
    """``recorded_at_start``: the process that posted it recorded its window when it started; or
    not (it ran a release before the record was kept): the upgrade (migration 0039) reads the ledger's
    own largest lag, before any process of the new release starts."""
    settings.occurred_at_window_hours = 168
    if recorded_at_start:
        network.pin_cycle_settings()
    shop, member = double_days(network, clock)
    clock.set(datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))
    network.earn(shop, member, "during", amount=10000)
    clock.set(datetime(2026, 11, 27, 0, 0, tzinfo=timezone.utc))  # 08:00 on the 27th
    late = network.earn(shop, member, "late", amount=10000,
                        occurred_at=datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc))  # 20:00 on its last day
    assert [line["rule"] for line in late["breakdown"]] == ["base_rate", "campaign:double"]
    if not recorded_at_start:  # the upgrade to the release that keeps the record
        _migrate(database_url, "0038", down=True)
        _migrate(database_url, "head")
    settings.occurred_at_window_hours = 72  # cut since
    network.pin_cycle_settings()  # a process starts with the smaller window
    for day in range(20, 27):
        network.settle(date(2026, 11, day))
    period = Period.parse("2026-11-15", "2026-11-27")
    reports = [network.tx(lambda tx: partner_report(tx, shop, period, rollup=rollup), readonly=True)
               for rollup in (True, False)]
    assert reports[0] == reports[1]
    [campaign] = reports[0]["campaigns"]
    assert campaign["campaign_points"] == 200
    assert (campaign["during"]["earns"], campaign["during"]["points"]) == (2, 400)
