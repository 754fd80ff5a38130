"""One person merged from two member records counts once in the reports' member figures.

Entries keep the duplicate's member id (history never changes), and the roll-ups store the member
ids as posted: the reports map each member to its person (``merged_into``, or itself) when they are
read, so a merge made after a period was rolled up counts it merged too (docs/reports.md, "Members").
"""

from __future__ import annotations

from shared.ledger.cycles import cycle_date_for
from shared.programme.merge import merge_members
from shared.reports.members import active_by_partner, active_members, member_figures
from shared.reports.network import network_report
from shared.reports.partner import partner_report
from shared.reports.period import Period
from tests.factories import make_member, make_partner
from tests.reports.conftest import TERMS


def today(network):
    return network.tx(lambda tx: cycle_date_for(tx.now, tx.settings))


def merge(network, survivor, duplicate):
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))


def figures(network, partner, period, rollup):
    """The partner's member figures, the network's active members, and each partner's."""
    def read(tx):
        return (member_figures(tx, partner, period, rollup=rollup), active_members(tx, period, rollup=rollup),
                active_by_partner(tx, period, rollup=rollup))
    return network.tx(read, readonly=True)


def person_figures(members):
    return {name: members[name] for name in (
        "active", "earning", "repeat_earning", "repeat_purchase_rate", "new", "linked", "from_elsewhere")}


ONE_PERSON = {"active": 1, "earning": 1, "repeat_earning": 1, "repeat_purchase_rate": "1.0000", "new": 1,
              "linked": 1, "from_elsewhere": 0}


def test_one_person_merged_counts_once_live_and_rolled_up(network, clock):
    shop = make_partner(network, "Shop", **TERMS)
    a, b = make_member(network, shop), make_member(network, shop)  # one person enrolled twice
    network.earn(shop, a, "e1", points=100)
    network.earn(shop, b, "e2", points=100)
    merge(network, a, b)
    day = today(network)
    clock.advance(days=1)
    network.settle(day)
    for rollup in (False, True):
        members = network.tx(lambda tx: partner_report(tx, shop, Period(day, day), rollup=rollup),
                             readonly=True)["members"]
        analytics = network.tx(lambda tx: network_report(tx, Period(day, day), rollup=rollup), readonly=True)
        assert person_figures(members) == ONE_PERSON
        assert members["status_mix"]["active"] == 1
        assert (analytics["totals"]["active_members"], analytics["leaderboard"][0]["active_members"]) == (1, 1)


def test_a_merge_after_the_roll_up_counts_once_on_reading(network, clock):
    """Days 1 and 2 rolled up (cycle and month rows) with both records, day 3 live: the survivor earns again."""
    shop = make_partner(network, "Shop", **TERMS)
    other = make_partner(network, "Other", **TERMS)
    a, b = make_member(network, shop), make_member(network, shop, also_linked_to=(other,))
    day1 = today(network)
    network.earn(other, make_member(network, other), "x1", points=10)  # someone else, on day 1
    clock.advance(days=1)
    day2 = today(network)
    network.earn(shop, a, "e1", points=100)
    network.earn(shop, b, "e2", points=100)
    network.earn(other, b, "o1", points=10)
    clock.advance(days=1)
    day3 = today(network)
    network.settle(day1)
    network.settle(day2)
    members, active, by_partner = figures(network, shop, Period(day2, day2), True)
    assert (members["active"], active, by_partner[shop]) == (2, 2, 2)  # two records, not merged yet
    merge(network, a, b)
    network.earn(shop, a, "e3", points=100)
    # the month's rows (days 1-2), the cycles' rows (day 2 of a month rolled up to day 2), with the ledger's
    for period in (Period(day1, day2), Period(day2, day2), Period(day2, day3), Period(day1, day3)):
        for rollup in (True, False):
            members, active, by_partner = figures(network, shop, period, rollup)
            # both records were enrolled on day 1
            assert person_figures(members) == ONE_PERSON | {"new": int(period.first == day1)}, (period, rollup)
            # the duplicate's earn at Other: the person, once (and day 1's other member)
            others = 2 if period.first == day1 else 1
            assert (active, by_partner) == (others, {shop: 1, other: others}), (period, rollup)


def test_new_counts_the_person_at_its_first_enrolment_by_the_survivors_partner(network, clock):
    shop = make_partner(network, "Shop", **TERMS)
    other = make_partner(network, "Other", **TERMS)
    early = make_member(network, shop)  # day 1: enrolled by Shop
    first = today(network)
    clock.advance(days=1)
    late = make_member(network, other)  # day 2: the same person, enrolled again by Other
    second = today(network)
    network.earn(shop, early, "e1", points=100)
    merge(network, late, early)  # the later record survives: the person is Other's, enrolled on day 1

    def new(partner, period):
        return figures(network, partner, period, False)[0]

    assert [new(other, p)["new"] for p in (Period(first, first), Period(second, second), Period(first, second))] \
        == [1, 0, 1]
    assert [new(shop, p)["new"] for p in (Period(first, first), Period(second, second), Period(first, second))] \
        == [0, 0, 0]
    # active at Shop through the duplicate's earn, and first enrolled by Other: traffic from elsewhere
    shop_day2 = new(shop, Period(second, second))
    assert (shop_day2["active"], shop_day2["from_elsewhere"], shop_day2["linked"]) == (1, 1, 1)


def test_a_survivor_merged_again_counts_its_earlier_duplicates_once(network, clock):
    """Merging b into a, then a into c: b now names c (one hop), and the three records are one person."""
    shop = make_partner(network, "Shop", **TERMS)
    a, b, c = (make_member(network, shop) for _ in range(3))
    for member, ref in ((a, "e1"), (b, "e2"), (c, "e3")):
        network.earn(shop, member, ref, points=100)
    merge(network, a, b)
    merge(network, c, a)
    day = today(network)
    clock.advance(days=1)
    network.settle(day)
    for rollup in (False, True):
        members, active, by_partner = figures(network, shop, Period(day, day), rollup)
        assert person_figures(members) == ONE_PERSON
        assert (active, by_partner) == (1, {shop: 1})
