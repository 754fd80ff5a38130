"""A prepaid partner's float sums its prepaid_funding lines exactly, however large the running sum grows.

Each line fits 64 bits (posting refuses more), and so does the partner's lifetime funding here, but
lines added in order can pass 2^63 on the way: three earns funding 4 * 10^18 micro-units each, then
the reversal of one, sum to 8 * 10^18 through 1.2 * 10^19. SQLite's integer ``SUM`` fails on that
("integer overflow"); the float's status, enforcing and repairing a float, and settlement's draws on
it must not, and must give the exact amount (``shared.reports.sql.exact_sum``)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from shared.models import PartnerLimits, Settlement
from shared.partners.limits import float_draws, float_status, repair_float_drawn, set_limits
from tests.factories import make_member, make_partner

FIRST, SECOND = date(2026, 11, 20), date(2026, 11, 21)
HUGE = dict(billing="prepaid", point_value="1000000", issuance_fee="0", redemption_fee_rate="0")
FUNDING_MINOR = 4_000_000 * 1_000_000  # one earn's prepaid funding, minor units (4 * 10^18 micro-units)


def by_bank(network, cycle, party) -> tuple[int, int]:
    return tuple(network.tx(lambda tx: tx.session.execute(select(Settlement.net_minor, Settlement.from_float_minor)
                                                          .where(Settlement.cycle_date == cycle,
                                                                 Settlement.party == party)).one(), readonly=True))


def test_a_float_whose_running_funding_passes_64_bits_is_summed_exactly(network, clock):
    coffee = make_partner(network, "CoffeeCo", **HUGE)
    member = make_member(network, coffee)
    for n in range(3):
        network.earn(coffee, member, f"coffee-{n}", points=4_000_000)
    network.reverse(coffee, "undo-2", "coffee-2")
    drawn = 2 * FUNDING_MINOR * 10**6
    status = network.tx(lambda tx: float_status(tx, coffee), readonly=True)
    assert status["drawn_micro"] == drawn and type(status["drawn_micro"]) is int
    assert status["balance_micro"] == -drawn

    network.tx(lambda tx: set_limits(tx, coffee, float_overdraft_minor=0))  # enforcing sums what was drawn
    kept = network.tx(lambda tx: tx.session.execute(select(PartnerLimits.float_drawn_micro).where(
        PartnerLimits.partner_id == coffee)).scalar_one(), readonly=True)
    assert kept == drawn
    assert network.tx(lambda tx: repair_float_drawn(tx, coffee)) is None  # the kept total matches the sum

    clock.advance(days=2)  # the first cycle is not settled yet when the second (no funding) is drawn on
    assert network.tx(lambda tx: float_draws(tx, SECOND), readonly=True) == {}
    draws = network.tx(lambda tx: float_draws(tx, FIRST), readonly=True)
    assert draws[coffee].funding_minor == 2 * FUNDING_MINOR and draws[coffee].from_float_minor == 0

    network.settle(SECOND)
    network.settle(FIRST)
    assert by_bank(network, FIRST, coffee) == (-2 * FUNDING_MINOR, 0)  # the empty float held none of it
    status = network.tx(lambda tx: float_status(tx, coffee), readonly=True)
    assert status["settled_by_bank_minor"] == 2 * FUNDING_MINOR and status["balance_micro"] == 0
