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


def double_days(network, clock) -> tuple[str, str]:
    """At 00:30 on 18 November in Shanghai: a shop whose rules double points from the 18th to the 20th, and
    a member."""
    clock.set(datetime(2026, 11, 17, 16, 30, tzinfo=timezone.utc))
    shop = make_partner(network, "Shop")
    member = make_member(network, shop)
    rules = {"campaigns": [{"id": "double", "name": "Double days", "starts_on": "2026-11-18",
                            "ends_on": "2026-11-20", "multiplier": "2"}]}
    network.tx(lambda tx: set_rules(tx, shop, json.dumps(rules)))
    return shop, member


@pytest.mark.parametrize("starts_on, ends_on, during, before", [  # during: up to the period's end, 2026-11-21
    ("2026-11-01", "9999-12-31", ("2026-11-01", "2026-11-21"), ("2026-10-11", "2026-10-31")),
    ("0001-01-01", "2026-12-31", ("2000-01-01", "2026-11-21"), ("2000-01-01", "1999-12-31")),  # nothing before
    ("2026-11-01", "2026-12-31", ("2026-11-01", "2026-11-21"), ("2026-10-11", "2026-10-31")),
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


def test_the_campaign_windows_count_earns_by_when_they_occurred(network, clock):
    """A campaign applies by the earn's occurred_at (network time zone), so its report does too: an
    earn posted the day after the campaign ended but made on its last day (the campaign gave it its
    points) counts during the campaign; one posted on its first day but made the evening before (no
    campaign points) counts before it. Read from the roll-ups or live, the figures agree."""
    shop, member = double_days(network, clock)
    early = network.earn(shop, member, "early", amount=10000,
                         occurred_at=datetime(2026, 11, 17, 15, 0, tzinfo=timezone.utc))  # 23:00 on the 17th
    assert [line["rule"] for line in early["breakdown"]] == ["base_rate"]
    clock.set(datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))
    network.earn(shop, member, "during", amount=10000)
    clock.set(datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc))  # 10:00 on the 21st: the campaign is over
    late = network.earn(shop, member, "late", amount=10000,
                        occurred_at=datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc))  # 20:00 on its last day
    assert [(line["rule"], line["points"]) for line in late["breakdown"]] == [("base_rate", 100),
                                                                              ("campaign:double", 100)]
    for day in (18, 19, 20):
        network.settle(date(2026, 11, day))
    period = Period.parse("2026-11-15", "2026-11-21")
    reports = [network.tx(lambda tx: partner_report(tx, shop, period, rollup=rollup), readonly=True)
               for rollup in (True, False)]
    assert reports[0] == reports[1]
    [campaign] = reports[0]["campaigns"]
    assert campaign["campaign_points"] == 200
    assert (campaign["during"]["from"], campaign["during"]["to"]) == ("2026-11-18", "2026-11-20")
    assert (campaign["during"]["earns"], campaign["during"]["points"],
            campaign["during"]["purchase_amount_minor"]) == (2, 400, 20000)
    assert (campaign["before"]["from"], campaign["before"]["to"]) == ("2026-11-15", "2026-11-17")
    assert (campaign["before"]["earns"], campaign["before"]["points"]) == (1, 100)


def test_a_closed_periods_campaigns_are_the_same_whenever_the_report_is_made(network, clock):
    """A report of closed cycles is the same whenever it is made (docs/reports.md), campaigns included:
    an earn posted after the period's end for a purchase made in it, awards given after it, and a rules
    version saved after it that reuses the campaign's id for other dates count in later periods only."""
    shop, member = double_days(network, clock)
    network.earn(shop, member, "before", amount=10000,
                 occurred_at=datetime(2026, 11, 17, 15, 0, tzinfo=timezone.utc))  # 23:00 on the 17th
    clock.set(datetime(2026, 11, 19, 2, 0, tzinfo=timezone.utc))
    network.earn(shop, member, "on-the-19th", amount=10000)
    clock.set(datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))
    for day in (18, 19):
        network.settle(date(2026, 11, day))
    period = Period.parse("2026-11-18", "2026-11-19")

    def campaigns():
        made = [network.tx(lambda tx: partner_report(tx, shop, period, rollup=rollup), readonly=True)["campaigns"]
                for rollup in (True, False)]
        assert made[0] == made[1]
        return made[0]

    first = campaigns()
    assert [(c["campaign"], c["starts_on"], c["campaign_points"]) for c in first] == [
        (f"{shop}:double", "2026-11-18", 100)]
    assert (first[0]["during"]["from"], first[0]["during"]["to"], first[0]["during"]["earns"]) == \
        ("2026-11-18", "2026-11-19", 1)
    assert (first[0]["before"]["from"], first[0]["before"]["to"], first[0]["before"]["earns"]) == \
        ("2026-11-16", "2026-11-17", 1)
    # later: an earn on the campaign's last day, one sent a day late for the 19th, and the id reused
    network.earn(shop, member, "on-the-20th", amount=10000)
    clock.set(datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc))
    late = network.earn(shop, member, "late-19th", amount=10000,
                        occurred_at=datetime(2026, 11, 19, 12, 0, tzinfo=timezone.utc))
    assert [line["rule"] for line in late["breakdown"]] == ["base_rate", "campaign:double"]
    reused = {"campaigns": [{"id": "double", "name": "Double days", "starts_on": "2026-12-28",
                             "ends_on": "2026-12-28", "multiplier": "2"}]}
    network.tx(lambda tx: set_rules(tx, shop, json.dumps(reused)))
    clock.set(datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc))
    for day in (20, 21):
        network.settle(date(2026, 11, day))
    assert campaigns() == first


def test_a_campaign_ending_on_a_periods_last_day_shows_its_late_earns_in_the_next_periods(network, clock):
    """A purchase on a campaign's last day sent the next morning gets the campaign's points in the next
    cycle: the reports of the periods after the campaign list it (as it stood at their end) while such
    late earns may still arrive, so that no report leaves them out."""
    shop, member = double_days(network, clock)
    clock.set(datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))
    network.earn(shop, member, "on-the-20th", amount=10000)
    clock.set(datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc))
    network.earn(shop, member, "late-20th", amount=10000,
                 occurred_at=datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc))
    clock.set(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    for day in (20, 21, 22):
        network.settle(date(2026, 11, day))

    def campaigns(first: str, last: str) -> list:
        made = [network.tx(lambda tx: partner_report(tx, shop, Period.parse(first, last), rollup=rollup),
                           readonly=True)["campaigns"] for rollup in (True, False)]
        assert made[0] == made[1]
        return [(c["campaign_points"], c["during"]["earns"], c["during"]["to"]) for c in made[0]]

    assert campaigns("2026-11-18", "2026-11-20") == [(100, 1, "2026-11-20")]
    assert campaigns("2026-11-21", "2026-11-22") == [(200, 2, "2026-11-20")]  # the late one counted
    assert campaigns("2026-12-01", "2026-12-02") == []  # long after: no late earn can come any more
