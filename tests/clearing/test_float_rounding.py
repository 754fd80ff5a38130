"""A prepaid float gives exactly what the statements say it gave.

A statement settles a cycle's prepaid funding rounded once to minor units (half-even), while the float
is drawn the exact lines (micro-units). Settlement credits the float with the difference
(``settlements.float_rounding_micro``), so after settlement the float's balance is the top-ups less
the statements' *from float*, in whole minor units: its headroom and what a leaving partner is paid
back are what the statements add up to. docs/ledger.md, decision 14; docs/settlement-files.md,
"Partners with a prepaid float".
"""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func, select

from shared.ledger.cycles import cycle_date_for
from shared.models import FloatTopup, Settlement
from shared.partners.contracts import ContractTerms, add_contract_version
from shared.partners.lifecycle import terminate
from shared.partners.limits import FloatExhausted, float_status, record_topup, set_limits
from tests.factories import make_member, make_partner, verify_ok

HALF_FEN = dict(billing="prepaid", point_value="0.5", issuance_fee="0", redemption_fee_rate="0")
MICRO = 1_000_000


def today(network):
    return network.tx(lambda tx: cycle_date_for(tx.now, tx.settings), readonly=True)


def floated(network, partner, *, topup: int, overdraft: int = 0) -> str:
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=overdraft))
    if topup:
        network.tx(lambda tx: record_topup(tx, partner, topup, "BANK-TOPUP-1"))
    return partner


def settled(network, partner, cycle) -> tuple[int, int, int]:
    """The partner's (net, from float, by bank) of the cycle."""
    row = network.tx(lambda tx: tx.session.execute(select(Settlement).where(
        Settlement.cycle_date == cycle, Settlement.party == partner)).scalar_one(), readonly=True)
    return row.net_minor, row.from_float_minor, row.by_bank_minor


def ledger_of_the_float(network, partner) -> tuple[int, int]:
    """(finance's top-ups, the statements' from float summed), in minor units."""
    def read(tx):
        topups = tx.session.execute(select(func.coalesce(func.sum(FloatTopup.amount_minor), 0)).where(
            FloatTopup.partner_id == partner, ~FloatTopup.bank_reference.like("settlement:%"))).scalar_one()
        taken = tx.session.execute(select(func.coalesce(func.sum(Settlement.from_float_minor), 0)).where(
            Settlement.party == partner)).scalar_one()
        return int(topups), int(taken)
    return network.tx(read, readonly=True)


def balance(network, partner) -> int:
    return network.tx(lambda tx: float_status(tx, partner), readonly=True)["balance_micro"]


def assert_square(network, partner) -> int:
    """The float's balance is top-ups less the statements' from float, exactly; returns it (minor)."""
    topups, taken = ledger_of_the_float(network, partner)
    assert balance(network, partner) == (topups - taken) * MICRO
    return topups - taken


def test_the_float_gives_what_the_statements_say_over_cycles_of_odd_rounding(network, clock):
    partner = floated(network, make_partner(network, "Half fen", **HALF_FEN), topup=2_000)
    member = make_member(network, partner)
    cycles = []
    # 388.5 (statement 388), 389.5 (390), 388.5 (388), 0.5 (0): half-fens both ways, and one to nothing
    for i, points in enumerate((777, 779, 777, 1)):
        network.earn(partner, member, f"e{i}", points=points)
        cycles.append(today(network))
        clock.advance(days=1)
    network.settle_due()
    assert [settled(network, partner, cycle)[1] for cycle in cycles] == [388, 390, 388, 0]
    # 1,167 drawn exactly, 1,166 on the statements: 834 stay in the float
    assert assert_square(network, partner) == 834
    status = network.tx(lambda tx: float_status(tx, partner), readonly=True)
    assert (status["balance_micro"], status["headroom_micro"]) == (834 * MICRO, 834 * MICRO)
    verify_ok(network)


def test_two_half_fen_cycles_leave_what_the_statements_did_not_take(network, clock):
    """The reviewer's case: 2 × 388.5 drawn, 2 × 388 on the statements: 224 stay in the float, not 223."""
    partner = floated(network, make_partner(network, "Half fen", **HALF_FEN), topup=1_000)
    member = make_member(network, partner)
    cycles = []
    for i in range(2):
        network.earn(partner, member, f"e{i}", points=777)
        cycles.append(today(network))
        clock.advance(days=1)
    network.settle_due()
    assert [settled(network, partner, cycle) for cycle in cycles] == [(-388, 388, 0), (-388, 388, 0)]
    assert balance(network, partner) == 224 * MICRO
    assert assert_square(network, partner) == 224
    # the headroom is the statements' too: 224 can be issued again (448 points), not 223.5
    network.earn(partner, member, "all-of-it", points=448)
    assert balance(network, partner) == 0
    verify_ok(network)


def test_an_overdraft_of_a_half_fen_cycle_is_due_by_bank_in_whole_fen(network, clock):
    """Top-up 300, funding 388.5 (statement 388): 300 from the float, 88 by bank; the partner pays the
    statement's net, 388, in all (300 in advance and 88 by bank), and the float is left at 0."""
    partner = floated(network, make_partner(network, "Half fen", **HALF_FEN), topup=300, overdraft=1_000)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=777)
    cycle = today(network)
    clock.advance(days=1)
    network.settle(cycle)
    net, from_float, by_bank = settled(network, partner, cycle)
    assert (net, from_float, by_bank) == (-388, 300, -88)
    topups, _taken = ledger_of_the_float(network, partner)
    assert topups - by_bank == -net  # paid in advance and by bank: the statement's net, not a fen more
    assert assert_square(network, partner) == 0
    status = network.tx(lambda tx: float_status(tx, partner), readonly=True)
    assert (status["settled_by_bank_minor"], status["headroom_micro"]) == (88, 1_000 * MICRO)
    verify_ok(network)


def test_a_later_cycles_reversal_gives_the_float_back_what_its_statement_gives(network, clock):
    partner = floated(network, make_partner(network, "Half fen", **HALF_FEN), topup=1_000)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=1_000)  # 500 exactly
    first = today(network)
    clock.advance(days=1)
    network.reverse(partner, "r1", "e1", points=111)  # -55.5: the statement gives back 56
    second = today(network)
    clock.advance(days=1)
    network.settle_due()
    assert settled(network, partner, first) == (-500, 500, 0)
    assert settled(network, partner, second) == (56, -56, 0)
    assert balance(network, partner) == 556 * MICRO
    assert assert_square(network, partner) == 556
    verify_ok(network)


def test_cycles_settled_out_of_order_have_the_figures_of_settling_in_order(network, clock):
    partner = floated(network, make_partner(network, "Half fen", **HALF_FEN), topup=300, overdraft=1_000)
    member = make_member(network, partner)
    cycles = []
    for i, points in enumerate((599, 599)):  # 299.5 each (statements 300, 300)
        network.earn(partner, member, f"e{i}", points=points)
        cycles.append(today(network))
        clock.advance(days=1)
    network.settle(cycles[1])  # by hand, before the older cycle
    network.settle(cycles[0])
    assert settled(network, partner, cycles[0]) == (-300, 300, 0)
    assert settled(network, partner, cycles[1]) == (-300, 0, -300)
    assert assert_square(network, partner) == 0
    verify_ok(network)


def test_a_buy_out_returns_the_top_ups_less_what_the_statements_took(network, clock):
    partner = make_partner(network, "Went prepaid", billing="postpaid", point_value="0.5")
    member = make_member(network, partner)
    network.earn(partner, member, "old", points=333)  # postpaid: bought out when the partner leaves
    network.tx(lambda tx: add_contract_version(tx, partner, ContractTerms(**HALF_FEN)))
    clock.advance(days=1)
    network.settle_due()
    floated(network, partner, topup=1_000)
    network.earn(partner, member, "new", points=777)  # 388.5 (statement 388)
    first = today(network)
    clock.advance(days=1)
    network.settle_due()
    network.earn(partner, member, "newer", points=4)  # 2
    network.tx(lambda tx: terminate(tx, partner, settlement="buy_out", buy_out_rate_ppm=1_000_000))  # 166.5
    final = today(network)
    clock.advance(days=1)
    network.settle_due()
    assert settled(network, partner, first)[1] == 388
    assert settled(network, partner, final)[1] == 168  # 168.5 in the final cycle, rounded half-even
    # what the float still holds is the partner's money: 1,000 paid in, 556 taken by the statements
    # (557 drawn exactly)
    assert assert_square(network, partner) == 444
    assert balance(network, partner) == 444 * MICRO
    verify_ok(network)


def test_verify_finds_a_rounding_credit_that_does_not_match_the_lines(network, clock):
    from sqlalchemy import update

    from shared.ledger.verify import verify

    partner = floated(network, make_partner(network, "Half fen", **HALF_FEN), topup=1_000)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=777)  # 388.5: credited +0.5
    cycle = today(network)
    clock.advance(days=1)
    network.settle(cycle)
    verify_ok(network)
    for wrong in (-500_000, 250_000, 1_500_000):  # rounded half-odd; not whole fen; more than half a fen
        network.tx(lambda tx, w=wrong: tx.session.execute(update(Settlement).where(Settlement.party == partner)
                                                          .values(float_rounding_micro=w)))
        report = network.tx(verify, readonly=True)
        assert [(o.check, o.subject) for o in report.offences] == [
            ("float_rounding_matches_lines", f"{partner} {cycle.isoformat()}")]


# Cycles settled out of order: 300.0, 389.5 (statement 390, credit -0.5), 1.0 against a top-up of 300.
# A later cycle's rounding credit is never counted in an earlier cycle's figures.
@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_every_order_of_settling_has_the_figures_of_date_order(network, clock, order):
    partner = floated(network, make_partner(network, "Half fen", **HALF_FEN), topup=300, overdraft=1_000)
    member = make_member(network, partner)
    cycles = []
    for i, points in enumerate((600, 779, 2)):
        network.earn(partner, member, f"e{i}", points=points)
        cycles.append(today(network))
        clock.advance(days=1)
    for i in order:
        network.settle(cycles[i])
    assert [settled(network, partner, cycle) for cycle in cycles] == [(-300, 300, 0), (-390, 0, -390), (-1, 0, -1)]
    assert assert_square(network, partner) == 0
    verify_ok(network)


def test_verify_finds_a_missing_rounding_credit(network, clock):
    from sqlalchemy import update

    from shared.ledger.verify import verify

    partner = floated(network, make_partner(network, "Half fen", **HALF_FEN), topup=1_000)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=1)  # 0.5: the statement settles 0, the float is credited 0.5
    cycle = today(network)
    clock.advance(days=1)
    network.settle(cycle)
    assert settled(network, partner, cycle) == (0, 0, 0)
    assert assert_square(network, partner) == 1_000
    verify_ok(network)
    network.tx(lambda tx: tx.session.execute(update(Settlement).where(Settlement.party == partner)
                                             .values(float_rounding_micro=0)))
    report = network.tx(verify, readonly=True)
    assert [(o.check, o.subject) for o in report.offences] == [
        ("float_rounding_matches_lines", f"{partner} {cycle.isoformat()}")]


# A float counts the prepaid funding since it was enforced: the cycles before, settled by bank, are not
# its draws (docs/ledger.md, decision 14).

def _enforce(network, partner, overdraft=0):
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=overdraft))


def test_a_float_enforced_after_cycles_settled_by_bank_counts_only_its_own(network, clock):
    partner = make_partner(network, "Later", **HALF_FEN)
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=None))
    member = make_member(network, partner)
    network.earn(partner, member, "old", points=777)
    old = today(network)
    clock.advance(days=1)
    network.settle_due()
    assert settled(network, partner, old) == (-388, 0, -388)  # by bank
    _enforce(network, partner)
    network.tx(lambda tx: record_topup(tx, partner, 1_000, "TOP-1"))
    network.earn(partner, member, "new", points=100)
    new = today(network)
    clock.advance(days=1)
    network.settle_due()
    assert settled(network, partner, new) == (-50, 50, 0)
    status = network.tx(lambda tx: float_status(tx, partner), readonly=True)
    assert (status["balance_micro"], status["headroom_micro"]) == (950 * MICRO, 950 * MICRO)
    assert assert_square(network, partner) == 950
    verify_ok(network)
    # the headroom is all of it: 950 can be issued (1,900 points), not a point more
    with pytest.raises(FloatExhausted):
        network.earn(partner, member, "too-much", points=1_901)
    network.earn(partner, member, "all-of-it", points=1_900)
    assert balance(network, partner) == 0


def test_a_cycle_ended_before_the_float_was_enforced_is_settled_by_bank(network, clock):
    """Enforced after a cycle's cut-off but before its settlement: that cycle is not the float's."""
    partner = make_partner(network, "Later", **HALF_FEN)
    member = make_member(network, partner)
    network.earn(partner, member, "old", points=777)  # 388.5
    old = today(network)
    clock.advance(days=1)
    _enforce(network, partner)
    network.tx(lambda tx: record_topup(tx, partner, 1_000, "TOP-1"))
    network.earn(partner, member, "new", points=100)  # 50, in the cycle open when it was enforced
    new = today(network)
    clock.advance(days=1)
    network.settle_due()
    assert settled(network, partner, old) == (-388, 0, -388)
    assert settled(network, partner, new) == (-50, 50, 0)
    assert assert_square(network, partner) == 950
    verify_ok(network)


def test_the_open_cycles_funding_before_enforcement_is_the_floats(network, clock):
    """The cycle open when the float is enforced settles from it, all of its funding: so it draws it."""
    partner = make_partner(network, "Later", **HALF_FEN)
    member = make_member(network, partner)
    network.earn(partner, member, "before", points=100)  # 50
    _enforce(network, partner)
    network.tx(lambda tx: record_topup(tx, partner, 1_000, "TOP-1"))
    assert balance(network, partner) == 950 * MICRO
    network.earn(partner, member, "after", points=100)  # 50
    cycle = today(network)
    clock.advance(days=1)
    network.settle_due()
    assert settled(network, partner, cycle) == (-100, 100, 0)
    assert assert_square(network, partner) == 900
    verify_ok(network)


def test_a_float_turned_off_and_on_again_does_not_count_what_was_settled_by_bank_meanwhile(network, clock):
    partner = floated(network, make_partner(network, "On and off", **HALF_FEN), topup=1_000)
    member = make_member(network, partner)
    cycles = []
    network.earn(partner, member, "on", points=100)  # 50, from the float
    cycles.append(today(network))
    clock.advance(days=1)
    network.settle_due()
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=None))
    network.earn(partner, member, "off", points=201)  # 100.5, by bank
    cycles.append(today(network))
    clock.advance(days=1)
    network.settle_due()
    _enforce(network, partner)
    assert balance(network, partner) == 950 * MICRO
    network.earn(partner, member, "on-again", points=100)  # 50, from the float
    cycles.append(today(network))
    clock.advance(days=1)
    network.settle_due()
    assert [settled(network, partner, cycle) for cycle in cycles] == [(-50, 50, 0), (-100, 0, -100), (-50, 50, 0)]
    assert assert_square(network, partner) == 900
    verify_ok(network)


def test_verify_finds_a_float_baseline_that_does_not_match_the_lines(network, clock):
    from sqlalchemy import update

    from shared.ledger.verify import verify
    from shared.models import PartnerLimits

    partner = make_partner(network, "Later", **HALF_FEN)
    member = make_member(network, partner)
    network.earn(partner, member, "old", points=777)
    clock.advance(days=1)
    network.settle_due()
    _enforce(network, partner)
    verify_ok(network)
    network.tx(lambda tx: tx.session.execute(update(PartnerLimits).where(PartnerLimits.partner_id == partner)
                                             .values(float_opened_micro=0)))
    report = network.tx(verify, readonly=True)
    assert [(o.check, o.subject) for o in report.offences] == [("float_opened_matches_lines", partner)]
