"""What a prepaid float settles of a cycle is what the float held; the rest moves by bank.

A partner's float can fall below zero: within its overdraft, and by draws that are never refused
(a buy-out when the partner leaves). Settlement takes from the float only what it held for the
cycle; the part it did not hold is due by bank with the cycle's settlement, and the float is
credited with it (a top-up ``settlement:<cycle>``), so that the partner does not owe it twice.
docs/settlement-files.md, "Partners with a prepaid float".
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.errors import ValidationFailed
from shared.ledger.journal import Journal
from shared.ledger.cycles import cycle_date_for
from shared.models import FloatTopup, Settlement
from shared.partners.contracts import ContractTerms, add_contract_version
from shared.partners.lifecycle import terminate
from shared.partners.limits import float_status, record_topup, set_limits
from shared.settlement.finance import record_payment
from tests.factories import make_member, make_partner, verify_ok
from tests.interleave import Pause, overlap

PREPAID = dict(billing="prepaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")
POSTPAID = dict(billing="postpaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")
MICRO = 1_000_000


def today(network):
    return network.tx(lambda tx: cycle_date_for(tx.now, tx.settings), readonly=True)


def settlements(network, cycle) -> dict[str, tuple[int, int, int, str]]:
    """party -> (net, from float, by bank, status) of the cycle."""
    rows = network.tx(lambda tx: tx.session.execute(select(Settlement).where(
        Settlement.cycle_date == cycle)).scalars().all(), readonly=True)
    return {r.party: (r.net_minor, r.from_float_minor, r.by_bank_minor, r.status) for r in rows}


def floated(network, partner, *, topup: int, overdraft: int = 0) -> str:
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=overdraft))
    if topup:
        network.tx(lambda tx: record_topup(tx, partner, topup, "BANK-TOPUP-1"))
    return partner


def credits(network, partner) -> dict[str, int]:
    """The float's credits from settlements: reference -> minor units."""
    return dict(network.tx(lambda tx: tx.session.execute(select(FloatTopup.bank_reference, FloatTopup.amount_minor)
                                                         .where(FloatTopup.partner_id == partner,
                                                                FloatTopup.bank_reference.like("settlement:%"))).all(),
                           readonly=True))


def test_an_overdraft_is_due_by_bank_and_only_what_the_float_held_is_from_the_float(network, clock):
    partner = floated(network, make_partner(network, "Prepaid", **PREPAID), topup=1_000, overdraft=500)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=1_400)  # 400 into the overdraft
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == -400 * MICRO
    cycle = today(network)
    clock.advance(days=1)
    network.settle(cycle)
    # the float held 1,000 of the 1,400: the other 400 were never paid in, so they are due by bank
    assert settlements(network, cycle) == {partner: (-1_400, 1_000, -400, "due"),
                                           "network": (1_400, -1_000, 400, "due")}
    # ... and the float is no longer short of them: the settlement is what owes them now
    assert credits(network, partner) == {f"settlement:{cycle.isoformat()}": 400}
    status = network.tx(lambda tx: float_status(tx, partner))
    assert (status["balance_micro"], status["headroom_micro"]) == (0, 500 * MICRO)
    assert (status["topups_minor"], status["settled_by_bank_minor"]) == (1_400, 400)
    paid = network.tx(lambda tx: record_payment(tx, cycle, partner, "BANK-IN-400"))
    assert (paid["status"], paid["by_bank_minor"]) == ("paid", -400)
    verify_ok(network)

    # the next cycle's overdraft is its own: the first one's is not asked for again
    network.earn(partner, member, "e2", points=300)
    second = today(network)
    clock.advance(days=1)
    network.settle(second)
    assert settlements(network, second) == {partner: (-300, 0, -300, "due"), "network": (300, 0, 300, "due")}
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == 0
    verify_ok(network)


def test_a_top_up_recorded_before_the_settlement_covers_the_overdraft(network, clock):
    partner = floated(network, make_partner(network, "Prepaid", **PREPAID), topup=1_000, overdraft=500)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=1_400)
    cycle = today(network)
    clock.advance(days=1)
    network.tx(lambda tx: record_topup(tx, partner, 400, "BANK-TOPUP-2"))  # the morning after, before settlement
    network.settle(cycle)
    assert settlements(network, cycle) == {partner: (-1_400, 1_400, 0, "nothing_due"),
                                           "network": (1_400, -1_400, 0, "nothing_due")}
    assert credits(network, partner) == {}


def test_the_next_cycles_draws_before_the_settlement_do_not_count_against_this_cycle(network, clock):
    partner = floated(network, make_partner(network, "Prepaid", **PREPAID), topup=1_000, overdraft=500)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=1_000)  # exactly what the float holds
    cycle = today(network)
    clock.advance(days=1)
    network.earn(partner, member, "e2", points=300)  # the next cycle, into the overdraft, before settlement
    network.settle(cycle)
    assert settlements(network, cycle)[partner] == (-1_000, 1_000, 0, "nothing_due")
    assert credits(network, partner) == {}


def test_reversals_give_back_to_the_float_whatever_it_holds(network, clock):
    partner = floated(network, make_partner(network, "Prepaid", **PREPAID), topup=1_000, overdraft=500)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=1_400)
    first = today(network)
    clock.advance(days=1)
    network.settle(first)
    network.reverse(partner, "r1", "e1", points=600)  # a cycle with negative prepaid funding
    second = today(network)
    clock.advance(days=1)
    network.settle(second)
    assert settlements(network, second) == {partner: (600, -600, 0, "nothing_due"),
                                            "network": (-600, 600, 0, "nothing_due")}
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == 600 * MICRO


def test_a_buy_out_is_settled_from_the_float_as_far_as_it_holds_it_and_the_rest_by_bank(network, clock):
    """A partner that issued postpaid points, then went prepaid with a float, leaves with a buy-out."""
    partner = make_partner(network, "Went prepaid", **POSTPAID)
    member = make_member(network, partner)
    network.earn(partner, member, "old", points=500)  # postpaid lot: bought out when the partner leaves
    network.tx(lambda tx: add_contract_version(tx, partner, ContractTerms(**PREPAID)))
    clock.advance(days=1)
    floated(network, partner, topup=300)
    network.earn(partner, member, "new", points=100)  # prepaid: 100 from the float, 200 left in it
    network.tx(lambda tx: terminate(tx, partner, settlement="buy_out", buy_out_rate_ppm=1_000_000))
    final = today(network)
    clock.advance(days=1)
    network.settle(final)
    # prepaid funding of the cycle: 100 at issuance + 500 for the buy-out; the float held 300 of it
    assert settlements(network, final) == {partner: (-600, 300, -300, "due"),
                                           "network": (600, -300, 300, "due")}
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == 0
    verify_ok(network)


def test_a_buy_out_the_float_holds_is_settled_from_the_float(network, clock):
    partner = make_partner(network, "Went prepaid", **POSTPAID)
    member = make_member(network, partner)
    network.earn(partner, member, "old", points=500)
    network.tx(lambda tx: add_contract_version(tx, partner, ContractTerms(**PREPAID)))
    clock.advance(days=1)
    floated(network, partner, topup=2_000)
    network.tx(lambda tx: terminate(tx, partner, settlement="buy_out", buy_out_rate_ppm=800_000))
    final = today(network)
    clock.advance(days=1)
    network.settle(final)
    assert settlements(network, final) == {partner: (-400, 400, 0, "nothing_due"),
                                           "network": (400, -400, 0, "nothing_due")}
    # what the float still holds is the partner's: 2,000 paid in, 400 used for the buy-out
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == 1_600 * MICRO
    assert credits(network, partner) == {}


def test_by_bank_amounts_sum_to_zero_with_a_float_short_and_other_parties(network, clock):
    partner = floated(network, make_partner(network, "Prepaid", **PREPAID), topup=100, overdraft=1_000)
    issuer = make_partner(network, "Issuer", **POSTPAID)
    member = make_member(network, partner, also_linked_to=(issuer,))
    network.earn(issuer, member, "i1", points=250)
    network.burn(partner, member, "b1", 250)  # the issuer reimburses the prepaid partner 250
    network.earn(partner, member, "e1", points=700)  # 600 of it beyond what the float holds
    cycle = today(network)
    clock.advance(days=1)
    network.settle(cycle)
    rows = settlements(network, cycle)
    # net -450; 100 from the float; 600 short netted with the 250 received: the partner pays 350 by bank
    assert rows[partner] == (-450, 100, -350, "due")
    assert rows[issuer] == (-250, 0, -250, "due")
    assert rows["network"] == (700, -100, 600, "due")
    assert sum(r[0] for r in rows.values()) == 0 and sum(r[2] for r in rows.values()) == 0
    assert credits(network, partner) == {f"settlement:{cycle.isoformat()}": 600}
    verify_ok(network)


def test_finance_cannot_record_a_top_up_under_a_settlements_reference(network):
    partner = make_partner(network, "Prepaid", **PREPAID)
    for reference in ("settlement:2026-11-20", "Settlement:2026-11-21"):
        with pytest.raises(ValidationFailed):
            network.tx(lambda tx: record_topup(tx, partner, 100, reference))
    assert network.tx(lambda tx: record_topup(tx, partner, 100, "settlement 2026-11-20"))["recorded"]


def test_a_posting_of_the_next_cycle_in_flight_does_not_change_what_the_float_held(network, clock, monkeypatch):
    """The kept total and the later cycles' lines are read in one statement (one snapshot on
    PostgreSQL): a posting that has written its lines and added them to the kept total but not yet
    committed is in neither, and once committed in both; either way this cycle's draws are the same."""
    partner = floated(network, make_partner(network, "Prepaid", **PREPAID), topup=1_000, overdraft=500)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=1_000)
    cycle = today(network)
    clock.advance(days=1)
    pause = Pause().after(monkeypatch, Journal, "flush")
    both = overlap(lambda: network.earn(partner, member, "in-flight", points=300),
                   lambda: network.settle(cycle), pause)
    assert both.first["points"] == 300 and not isinstance(both.second, Exception), both
    assert settlements(network, cycle)[partner] == (-1_000, 1_000, 0, "nothing_due")
    verify_ok(network)


def test_a_later_cycles_settlement_credit_does_not_pay_an_earlier_cycles_overdraft(network, clock):
    """`pointsnet clearing run --cycle D` settles any ended cycle by hand. Until 2026-12-05 a cycle
    counted every top-up recorded so far, the settlement:<later cycle> credits too, but not the later
    cycles' draws those credits answer: settled after the next one, it took its own overdraft "from
    the float", only 100 of the 200 issued were ever due by bank, and the float stayed 100 short with
    both cycles settled. Settled in either order, the figures are those of the settlement in order."""
    partner = floated(network, make_partner(network, "Prepaid", **PREPAID), topup=0, overdraft=1_000)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=100)  # all of it in the overdraft
    first = today(network)
    clock.advance(days=1)
    network.earn(partner, member, "e2", points=100)
    second = today(network)
    clock.advance(days=1)
    network.settle(second)  # by hand, before the older cycle
    network.settle(first)
    assert settlements(network, first)[partner] == (-100, 0, -100, "due")
    assert settlements(network, second)[partner] == (-100, 0, -100, "due")
    # 200 issued, nothing ever topped up: all 200 are due by bank, and the float is square again
    assert credits(network, partner) == {f"settlement:{first.isoformat()}": 100,
                                         f"settlement:{second.isoformat()}": 100}
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == 0
    assert network.settle(first)["already_settled"] and network.settle(second)["already_settled"]
    assert settlements(network, first)[partner] == (-100, 0, -100, "due")
    verify_ok(network)


def _three_cycles(network, clock, partner, member) -> list:
    """100 issued, 50 of it reversed the next day, 100 issued the day after: three ended cycles."""
    cycles = []
    network.earn(partner, member, "e1", points=100)
    cycles.append(today(network))
    clock.advance(days=1)
    network.reverse(partner, "r1", "e1", points=50)  # a cycle whose prepaid funding is negative
    cycles.append(today(network))
    clock.advance(days=1)
    network.earn(partner, member, "e2", points=100)
    cycles.append(today(network))
    clock.advance(days=1)
    return cycles


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (2, 1, 0), (1, 2, 0)])
def test_cycles_settled_in_any_order_have_the_figures_of_their_settlement_in_order(network, clock, order):
    """A cycle settled before an earlier one counts that one as its settlement would have it now: the
    first cycle's 100 are due by bank with it, the second's reversal gives 50 back to the float, and
    the third takes those 50 from the float and 50 by bank, whichever is settled first. Counting the
    earlier cycle's overdraft as the third's (its credit not recorded yet) asked 200 by bank for 150
    issued and left the partner 50 in the float it never paid in."""
    partner = floated(network, make_partner(network, "Prepaid", **PREPAID), topup=0, overdraft=1_000)
    member = make_member(network, partner)
    cycles = _three_cycles(network, clock, partner, member)
    for index in order:
        network.settle(cycles[index])
    assert [settlements(network, cycle)[partner] for cycle in cycles] == [
        (-100, 0, -100, "due"), (50, -50, 0, "nothing_due"), (-100, 50, -50, "due")]
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == 0
    verify_ok(network)


def test_a_top_up_between_settlements_out_of_order_leaves_nothing_unpaid(network, clock):
    """The later cycle, settled first, leaves the earlier one's overdraft to the earlier one's
    settlement; a top-up recorded before that settlement pays it (as in order), and the float ends
    square: nothing is asked twice, and nothing is left unasked."""
    partner = floated(network, make_partner(network, "Prepaid", **PREPAID), topup=0, overdraft=1_000)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=100)
    first = today(network)
    clock.advance(days=1)
    network.earn(partner, member, "e2", points=100)
    second = today(network)
    clock.advance(days=1)
    network.settle(second)
    assert settlements(network, second)[partner] == (-100, 0, -100, "due")
    network.tx(lambda tx: record_topup(tx, partner, 100, "BANK-TOPUP-2"))
    network.settle(first)
    assert settlements(network, first)[partner] == (-100, 100, 0, "nothing_due")
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == 0
    verify_ok(network)
