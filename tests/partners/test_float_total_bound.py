"""A prepaid partner's enforced float keeps what it has given in all in one 64-bit column
(``partner_limits.float_drawn_micro``). An earn that would carry it past 2^63 - 1 overflowed: on
PostgreSQL its trigger failed every later earn of the partner with a database error (500), and SQLite
turned the total into a float (REAL), which every later float figure and ``pointsnet verify`` then read.
Such an earn is now refused with ``float_total_too_large``, the total left exact."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.errors import PointsnetError
from shared.ledger.events import Event
from shared.ledger.verify import verify
from shared.money import MAX_MICRO
from shared.models import PartnerLimits
from shared.partners.limits import MAX_MINOR, record_topup, set_limits
from tests.factories import make_member, make_partner

POINTS = 10**12  # the most one earn gives: 10^18 micro-units of float at a point value of 1


def prepaid_shop(network) -> tuple[str, str]:
    """A prepaid partner (a point worth 1 minor unit) with its float enforced and topped up twice with the
    most a top-up may be, and a member."""
    shop = make_partner(network, "Shop", billing="prepaid", point_value="1")
    network.tx(lambda tx: set_limits(tx, shop, float_overdraft_minor=0))
    for n in range(2):
        network.tx(lambda tx: record_topup(tx, shop, MAX_MINOR, f"BANK-{n}"))
    return shop, make_member(network, shop)


def big_earns(network, shop: str, member: str) -> None:
    """Nine earns of the most points: the float's kept total at 9 * 10^18, room for about 2.2 * 10^11 more."""
    for n in range(9):
        network.earn(shop, member, f"big-{n}", points=POINTS)


def test_an_earn_that_would_carry_the_floats_total_past_64_bits_is_refused(network):
    shop, member = prepaid_shop(network)
    big_earns(network, shop, member)
    with pytest.raises(PointsnetError) as refused:
        network.earn(shop, member, "one-too-many", points=POINTS)
    assert refused.value.code == "float_total_too_large"
    kept = network.tx(lambda tx: tx.session.scalar(select(PartnerLimits.float_drawn_micro).where(
        PartnerLimits.partner_id == shop)), readonly=True)
    assert type(kept) is int and kept == 9 * POINTS * 10**6 <= MAX_MICRO
    network.earn(shop, member, "small", points=1)  # what still fits is given
    report = network.tx(lambda tx: verify(tx), readonly=True)
    assert report.ok, report.offences


def test_a_float_no_longer_enforced_keeps_its_total_bounded_and_a_quote_says_so(network):
    """A float whose limit is lifted (``--float-overdraft none``) keeps its kept total, which every prepaid
    earn still adds to: the bound holds for it as well, and a quote refuses what the earn would."""
    from shared.ledger.posting import quote_earn

    shop, member = prepaid_shop(network)
    big_earns(network, shop, member)
    network.tx(lambda tx: set_limits(tx, shop, float_overdraft_minor=None))
    with pytest.raises(PointsnetError) as quoted:
        network.tx(lambda tx: quote_earn(tx, shop, Event("earn", "one-too-many", member, points=POINTS)))
    assert quoted.value.code == "float_total_too_large"
    with pytest.raises(PointsnetError) as refused:
        network.earn(shop, member, "one-too-many", points=POINTS)
    assert refused.value.code == "float_total_too_large"
    kept = network.tx(lambda tx: tx.session.scalar(select(PartnerLimits.float_drawn_micro).where(
        PartnerLimits.partner_id == shop)), readonly=True)
    assert type(kept) is int and kept == 9 * POINTS * 10**6
    report = network.tx(lambda tx: verify(tx), readonly=True)
    assert report.ok, report.offences


def test_a_buy_out_that_would_overflow_the_floats_total_stops_keeping_it(network, clock):
    """A buy-out is never refused, and its prepaid funding lines add to the float's kept total: one that
    would carry it past 2^63 - 1 (a partner moved to postpaid billing, as float_total_too_large advises,
    then terminated with a buy-out) failed the termination on PostgreSQL and made the total a float on
    SQLite. The total is no longer kept then; every figure sums the partner's lines exactly."""
    from datetime import timedelta

    from shared.partners.contracts import ContractTerms, add_contract_version
    from shared.partners.lifecycle import terminate
    from shared.partners.limits import float_status

    shop, member = prepaid_shop(network)
    big_earns(network, shop, member)
    network.tx(lambda tx: add_contract_version(tx, shop, ContractTerms("postpaid", 1)))
    clock.advance(days=1)
    network.earn(shop, member, "postpaid", points=POINTS)
    ended = network.tx(lambda tx: terminate(tx, shop, settlement="buy_out", buy_out_rate_ppm=1_000_000))
    assert ended["status"] == "terminated"
    kept = network.tx(lambda tx: tx.session.scalar(select(PartnerLimits.float_drawn_micro).where(
        PartnerLimits.partner_id == shop)), readonly=True)
    assert kept is None
    status = network.tx(lambda tx: float_status(tx, shop), readonly=True)
    assert status["drawn_micro"] == 10 * POINTS * 10**6 and type(status["drawn_micro"]) is int
    report = network.tx(lambda tx: verify(tx), readonly=True)
    assert report.ok, report.offences
    clock.advance(days=1)
    network.settle(clock.now().date() - timedelta(days=1))


def test_an_earn_refused_for_the_floats_total_counts_toward_no_limit(network):
    """float_total_too_large was decided after the earn's velocity limits had counted its points, so a
    refused earn used up the partner's daily issuance; it is now decided before them, as a quote does."""
    from shared.ledger.posting import quote_earn
    from shared.rules.store import set_rules

    shop, member = prepaid_shop(network)
    room = (MAX_MICRO - 9 * POINTS * 10**6) // 10**6  # the points the float's total has room for after 9 earns
    # the day's cap leaves room for the earn that fits, not for it and the refused one as well
    network.tx(lambda tx: set_rules(tx, shop, f"limits: {{partner_daily_issuance: {9 * POINTS + room + room // 2}}}"))
    big_earns(network, shop, member)
    over = Event("earn", "over", member, points=room + 1)
    for attempt in (lambda: network.tx(lambda tx: quote_earn(tx, shop, over)),
                    lambda: network.earn(shop, member, "over", points=room + 1)):
        with pytest.raises(PointsnetError) as refused:
            attempt()
        assert refused.value.code == "float_total_too_large"
    # in one batch with an earn that fits: the refused earn uses none of the day's issuance
    refused, fits = network.post(shop, [over, Event("earn", "fits", member, points=room)])
    assert refused.code == "float_total_too_large" and fits["points"] == room, fits
