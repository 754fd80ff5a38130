"""Money reports sum a settled cycle's obligation lines exactly, however large the running sum grows.

Each line fits 64 bits (posting refuses more) and so does each settled (payer, payee, kind) sum
(settlement refuses more: ``cycle_sum_too_large``), but lines added in order can pass 2^63 on the way:
three issuance fees of 4 * 10^18 micro-units, then the reversal of one, sum to 8 * 10^18 through
1.2 * 10^19. SQLite's integer ``SUM`` fails on that ("integer overflow"); the report roll-up written at
settlement and a report's live sums must not, and must give the exact amount (never a float)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from shared.ledger.events import Event
from shared.models import ReportCycleLines
from shared.reports.money import statement_sums
from shared.reports.partner import partner_report
from shared.reports.period import Period
from tests.factories import make_member, make_partner

CYCLE = date(2026, 11, 20)
HUGE = dict(billing="postpaid", point_value="1000000", issuance_fee="1000000", redemption_fee_rate="0")
FEE_MINOR = 4_000_000 * 1_000_000  # one earn's issuance fee, minor units (4 * 10^18 micro-units)


def test_a_running_sum_beyond_64_bits_settles_and_reports_exactly(network, clock):
    coffee = make_partner(network, "CoffeeCo", **HUGE)
    member = make_member(network, coffee)
    for n in range(3):
        network.earn(coffee, member, f"coffee-{n}", points=4_000_000)
    network.reverse(coffee, "undo-2", "coffee-2")
    clock.advance(days=1)
    result = network.settle(CYCLE)
    assert result["net_positions"] == {coffee: -2 * FEE_MINOR, "network": 2 * FEE_MINOR}
    rolled = network.tx(lambda tx: {(r.payer, r.payee, r.kind): r.amount_micro for r in tx.session.execute(
        select(ReportCycleLines)).scalars()}, readonly=True)
    assert rolled == {(coffee, "network", "issuance_fee"): 2 * FEE_MINOR * 10**6}
    period = Period(CYCLE, CYCLE)
    for rollup in (True, False):  # the roll-up's rows, and the live sums over the ledger
        sums = network.tx(lambda tx: statement_sums(tx, coffee, period, rollup=rollup), readonly=True)
        assert sums == {(CYCLE, coffee, "network", "issuance_fee"): 2 * FEE_MINOR}, rollup
        assert all(type(amount) is int for amount in sums.values())


def test_purchase_amounts_summing_past_64_bits_settle_and_report_exactly(network, clock):
    """A partner may give a purchase amount of up to 10^15 minor units with each earn (explicit points
    beside it): 9,300 of them in a cycle sum past 2^63. The roll-up written in the settlement's unit summed
    them into a BIGINT, so the cycle — every partner's settlement — could never be settled; a live report
    failed on SQLite. Both now hold the exact sum, over one cycle and over several."""
    coffee = make_partner(network, "CoffeeCo")
    member = make_member(network, coffee)
    events = [Event("earn", f"big-{n}", member, amount=10**15, points=1) for n in range(9_300)]
    assert all(not isinstance(outcome, Exception) for outcome in network.post(coffee, events))
    clock.advance(days=1)
    network.earn(coffee, member, "next-day", amount=7, points=1)
    whole = 9_300 * 10**15
    assert whole > 2**63
    live = network.tx(lambda tx: partner_report(tx, coffee, Period(CYCLE, CYCLE), rollup=False), readonly=True)
    assert live["members"]["purchase_amount_minor"] == whole
    network.settle(CYCLE)
    clock.advance(days=1)
    network.settle(date(2026, 11, 21))
    for rollup in (True, False):
        for period, expected in ((Period(CYCLE, CYCLE), whole), (Period(CYCLE, date(2026, 11, 21)), whole + 7)):
            report = network.tx(lambda tx: partner_report(tx, coffee, period, rollup=rollup), readonly=True)
            assert report["members"]["purchase_amount_minor"] == expected, (rollup, period)
            assert type(report["members"]["purchase_amount_minor"]) is int
