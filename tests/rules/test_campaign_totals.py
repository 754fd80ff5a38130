"""What a campaign gave in all is one stored row, not a sum over its awards, and always equals that sum.

A campaign with a cap in all used to sum every award it had given on every posting (106 ms an earn on
SQLite at 100,000 awards). Its ``campaign_totals`` row is made from that sum by the first unit that
checks the cap and is added to by every unit that gives from the campaign, under any rule version;
``pointsnet verify`` checks it against the awards.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, update

from shared.ledger import posting as posting_module
from shared.ledger.events import Event
from shared.ledger.posting import quote_earn
from shared.ledger.verify import verify
from shared.models import CampaignAward, CampaignTotal
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner, verify_ok
from tests.interleave import Pause, overlap

CITY = ("campaigns: [{id: city, name: City day, starts_on: 2026-11-01, ends_on: 2026-11-30, bonus_points: 10, "
        "funded_by: network%s}]")
KEY = "network:city"


def city(network, cap: int | None = None, **when) -> None:
    network.tx(lambda tx: set_rules(tx, "network", CITY % (f", campaign_cap: {cap}" if cap else ""), **when))


def stored(network) -> int | None:
    return network.tx(lambda tx: tx.session.execute(
        select(CampaignTotal.points).where(CampaignTotal.campaign == KEY)).scalar_one_or_none(), readonly=True)


def awarded(network) -> int:
    return network.tx(lambda tx: tx.session.execute(
        select(func.coalesce(func.sum(CampaignAward.points), 0)).where(CampaignAward.campaign == KEY)).scalar_one(),
        readonly=True)


def city_points(result) -> int:
    return sum(line["points"] for line in result["breakdown"] if line["rule"] == "campaign:city")


def shop(network):
    partner = make_partner(network)
    return partner, [make_member(network, partner) for _ in range(3)]


def test_the_total_is_kept_with_the_awards(network, clock):
    partner, members = shop(network)
    city(network, cap=45)
    clock.advance(seconds=1)
    network.earn(partner, members[0], "one", amount=1_000)
    assert stored(network) == 10
    outcomes = network.post(partner, [Event("earn", f"b-{n}", members[n % 3], amount=1_000) for n in range(5)])
    assert [city_points(o) for o in outcomes] == [10, 10, 10, 5, 0]
    assert stored(network) == awarded(network) == 45
    verify_ok(network)


def test_a_cap_added_later_counts_what_the_campaign_gave_before(network, clock):
    """Without a cap there is no row (nothing to keep); the first unit under a cap makes it from the awards."""
    partner, members = shop(network)
    city(network)
    clock.advance(seconds=1)
    for n in range(3):
        network.earn(partner, members[n], f"before-{n}", amount=1_000)
    assert stored(network) is None and awarded(network) == 30
    city(network, cap=35)
    clock.advance(seconds=1)
    assert city_points(network.earn(partner, members[0], "capped", amount=1_000)) == 5
    assert stored(network) == awarded(network) == 35
    verify_ok(network)


def test_a_row_outlives_its_cap_and_counts_on(network, clock):
    """Rules that drop the cap still add to the row, so a cap set again later counts every award."""
    partner, members = shop(network)
    city(network, cap=1_000)
    clock.advance(seconds=1)
    network.earn(partner, members[0], "capped", amount=1_000)
    city(network)
    clock.advance(seconds=1)
    network.post(partner, [Event("earn", f"free-{n}", members[n], amount=1_000) for n in range(3)])
    assert stored(network) == awarded(network) == 40
    city(network, cap=45)
    clock.advance(seconds=1)
    assert city_points(network.earn(partner, members[1], "capped-again", amount=1_000)) == 5
    assert stored(network) == awarded(network) == 45
    verify_ok(network)


def test_a_quote_reads_the_awards_and_writes_no_row(network, clock):
    partner, members = shop(network)
    city(network)
    clock.advance(seconds=1)
    network.earn(partner, members[0], "free", amount=1_000)
    city(network, cap=15)
    clock.advance(seconds=1)
    quote = network.tx(lambda tx: quote_earn(tx, partner, Event("earn", "q", members[0], amount=1_000)))
    assert city_points(quote) == 5 and stored(network) is None


def test_verify_finds_a_total_that_does_not_match(network, clock):
    partner, members = shop(network)
    city(network, cap=100)
    clock.advance(seconds=1)
    network.earn(partner, members[0], "one", amount=1_000)
    network.tx(lambda tx: tx.session.execute(update(CampaignTotal).values(points=CampaignTotal.points + 1)))
    report = network.tx(verify, readonly=True)
    assert [(o.check, o.subject) for o in report.offences] == [("campaign_total_matches_awards", KEY)]


def test_a_cap_taking_effect_waits_for_earns_still_under_the_old_rules(network, clock, monkeypatch):
    """An earn posted under the rules without the cap, still in flight when the capped rules take
    effect, is counted by the first capped unit: it waits for it (PostgreSQL: the campaign's lock,
    shared by units giving under rules without the cap; SQLite: the one writer)."""
    partner, members = shop(network)
    city(network)
    clock.advance(seconds=1)
    network.earn(partner, members[0], "before", amount=1_000)
    city(network, cap=15, effective_from=clock.now() + timedelta(seconds=5))
    pause = Pause().after(monkeypatch, posting_module, "campaign_usage")

    def capped_earn():
        clock.advance(seconds=10)
        return network.earn(partner, members[2], "capped", amount=1_000)

    both = overlap(lambda: network.earn(partner, members[1], "in-flight", amount=1_000), capped_earn, pause)
    assert both.second_waited
    assert (city_points(both.first), city_points(both.second)) == (10, 0)  # 10 + 10 before it: the cap is used up
    assert stored(network) == awarded(network) == 20
    verify_ok(network)


def test_an_earn_under_the_old_rules_after_the_cap_adds_to_the_total(network, clock, monkeypatch):
    """The other way round: the capped unit first (it makes the row), then an earn posted under the
    rules without the cap; it waits, then adds its award to the row."""
    partner, members = shop(network)
    city(network)
    clock.advance(seconds=1)
    start = clock.now()
    city(network, cap=100, effective_from=start + timedelta(seconds=5))
    pause = Pause().after(monkeypatch, posting_module, "campaign_usage")
    clock.advance(seconds=10)

    def old_rules_earn():
        clock.set(start)
        return network.earn(partner, members[1], "old-rules", amount=1_000)

    both = overlap(lambda: network.earn(partner, members[0], "capped", amount=1_000), old_rules_earn, pause)
    assert both.second_waited
    assert both.first["rules"]["network"] == 2 and both.second["rules"]["network"] == 1
    assert stored(network) == awarded(network) == 20
    verify_ok(network)


@pytest.mark.postgres
def test_the_database_adds_every_award_whoever_writes_it(network, clock):
    """On PostgreSQL a trigger keeps the row, not the posting code: during a rolling upgrade processes of
    the previous release keep writing awards, and the row must count theirs too. (SQLite's one writer
    runs one release; there the journal adds them, as test_the_total_is_kept_with_the_awards shows.)"""
    partner, members = shop(network)
    city(network, cap=100)
    clock.advance(seconds=1)
    entry_id = network.earn(partner, members[0], "one", amount=1_000)["entry_id"]
    network.tx(lambda tx: tx.session.execute(insert(CampaignAward), [
        {"id": f"cmp_written_elsewhere_{n}", "campaign": campaign, "member_id": members[1], "entry_id": entry_id,
         "points": 7} for n, campaign in enumerate([KEY, KEY, "network:other"])]))
    assert stored(network) == awarded(network) == 24
    assert city_points(network.earn(partner, members[2], "two", amount=1_000)) == 10
    assert stored(network) == awarded(network) == 34
