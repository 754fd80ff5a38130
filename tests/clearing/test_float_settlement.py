"""A prepaid partner's float at settlement: what its net takes from the float, and what is left to move by bank.

A partner with a prepaid float paid its prepaid funding in advance through top-ups; on its statement
that part of the net is settled from the float (docs/settlement-files.md, "Finance"). Settlement keeps
it per party (``settlements.from_float_minor``: the cycle's rounded ``prepaid_funding`` sum, the
network minus their total) and the finance status follows the by-bank amount, net + from float:
``due`` or ``nothing_due``, ``paid`` or ``received``, overdue or not.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from shared.ledger.cycles import cycle_date_for
from shared.models import Settlement
from shared.partners.limits import record_topup, set_limits
from shared.settlement.finance import NothingDue, overdue, record_payment
from shared.settlement.files import statement_name
from tests.cli.inprocess import pointsnet
from tests.factories import make_member, make_partner, verify_ok

PREPAID = dict(billing="prepaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")
POSTPAID = dict(billing="postpaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")


def float_partner(network, name="Prepaid", **terms) -> str:
    partner = make_partner(network, name, **(PREPAID | terms))
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=0))
    network.tx(lambda tx: record_topup(tx, partner, 1_000, "BANK-TOPUP"))
    return partner


def today(network):
    return network.tx(lambda tx: cycle_date_for(tx.now, tx.settings), readonly=True)


def settle_today(network, clock) -> tuple:
    cycle = today(network)
    clock.advance(days=1)
    return cycle, network.settle(cycle)


def settlements(network, cycle) -> dict[str, tuple[int, int, str]]:
    """party -> (net, from float, status) of the cycle."""
    rows = network.tx(lambda tx: tx.session.execute(select(
        Settlement.party, Settlement.net_minor, Settlement.from_float_minor, Settlement.status).where(
        Settlement.cycle_date == cycle)).all(), readonly=True)
    return {party: (net, from_float, status) for party, net, from_float, status in rows}


def late(network, cycle) -> dict[str, dict]:
    return {r["party"]: r for r in network.tx(lambda tx: overdue(tx, cycle + timedelta(days=30)), readonly=True)}


def test_a_net_wholly_settled_from_the_float_is_nothing_due_and_never_overdue(network, clock):
    partner = float_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=700)
    cycle, _ = settle_today(network, clock)
    # net -700, all of it from the float: by bank 0; the network got the 700 with the top-up
    assert settlements(network, cycle) == {partner: (-700, 700, "nothing_due"),
                                           "network": (700, -700, "nothing_due")}
    assert late(network, cycle) == {}, "finance is told to chase a bank payment nobody owes"
    with pytest.raises(NothingDue):
        network.tx(lambda tx: record_payment(tx, cycle, partner, "BANK-0"))
    verify_ok(network)


def test_the_docs_example_net_minus_580_is_120_received_by_bank(network, clock):
    """docs/settlement-files.md: net −580, 700 from the float, 'the network pays it 120 by bank'."""
    partner = float_partner(network)
    issuer = make_partner(network, "Issuer", **POSTPAID)
    member = make_member(network, partner, also_linked_to=(issuer,))
    network.earn(issuer, member, "i1", points=120)
    network.burn(partner, member, "b1", 120)  # the issuer reimburses the prepaid partner 120
    network.earn(partner, member, "e1", points=700)
    cycle, result = settle_today(network, clock)
    assert result["net_positions"][partner] == -580
    assert settlements(network, cycle) == {partner: (-580, 700, "due"), issuer: (-120, 0, "due"),
                                           "network": (700, -700, "nothing_due")}
    chased = late(network, cycle)
    assert set(chased) == {partner, issuer}
    assert (chased[partner]["net_minor"], chased[partner]["from_float_minor"], chased[partner]["by_bank_minor"]) == \
        (-580, 700, 120)
    recorded = network.tx(lambda tx: record_payment(tx, cycle, partner, "BANK-PAYOUT-120"))
    # by bank the network paid the partner 120: the partner *received*
    assert recorded == {"cycle_date": cycle.isoformat(), "party": partner, "net_minor": -580, "from_float_minor": 700,
                        "by_bank_minor": 120, "status": "received", "bank_reference": "BANK-PAYOUT-120",
                        "amount_minor": 120, "paid_minor": 120, "outstanding_minor": 0}
    assert network.tx(lambda tx: record_payment(tx, cycle, issuer, "BANK-IN-120"))["status"] == "paid"
    assert late(network, cycle) == {}


def test_a_prepaid_partner_without_a_float_moves_its_whole_net_by_bank(network, clock):
    unfloated = make_partner(network, "Prepaid without a float", **PREPAID)  # no float enforced
    member = make_member(network, unfloated)
    network.earn(unfloated, member, "u1", points=200)
    cycle, _ = settle_today(network, clock)
    assert settlements(network, cycle) == {unfloated: (-200, 0, "due"), "network": (200, 0, "due")}
    assert late(network, cycle)[unfloated]["by_bank_minor"] == -200
    recorded = network.tx(lambda tx: record_payment(tx, cycle, unfloated, "BANK-IN-200"))
    assert (recorded["status"], recorded["from_float_minor"], recorded["by_bank_minor"]) == ("paid", 0, -200)
    assert network.tx(lambda tx: record_payment(tx, cycle, "network", "BANK-IN-200"))["status"] == "received"


def test_postpaid_parties_are_paid_and_received_by_their_net_as_before(network, clock):
    issuer = make_partner(network, "Issuer", **POSTPAID)
    shop = make_partner(network, "Shop", **POSTPAID)
    member = make_member(network, issuer, also_linked_to=(shop,))
    network.earn(issuer, member, "e1", points=500)
    network.burn(shop, member, "b1", 300)
    cycle, _ = settle_today(network, clock)
    assert settlements(network, cycle) == {issuer: (-300, 0, "due"), shop: (300, 0, "due"),
                                           "network": (0, 0, "nothing_due")}  # no fees: a party at 0
    assert network.tx(lambda tx: record_payment(tx, cycle, issuer, "BANK-1"))["status"] == "paid"
    assert network.tx(lambda tx: record_payment(tx, cycle, shop, "BANK-2"))["status"] == "received"


def test_the_float_is_rounded_once_per_cycle_and_payer_as_on_the_statement(network, clock):
    partner = float_partner(network, point_value="0.5")
    member = make_member(network, partner)
    for n in range(3):  # 0.5 fen each: 1.5 fen in the cycle, rounded once (half-even) to 2
        network.earn(partner, member, f"e{n}", points=1)
    cycle, result = settle_today(network, clock)
    statement = network.settings.data_dir / "settlements" / cycle.isoformat() / statement_name(partner)
    [summary] = [r for r in csv.DictReader(io.StringIO(statement.read_text()))
                 if r["record_type"] == "S" and r["line_kind"] == "prepaid_funding"]
    assert (summary["amount"], summary["amount_minor"]) == ("-1.500000", "-2")  # rounded once; pays −
    assert result["net_positions"][partner] == -2
    assert settlements(network, cycle)[partner] == (-2, 2, "nothing_due")


def test_a_float_enforced_or_removed_later_does_not_change_a_settled_cycle(network, clock, database_url):
    later = make_partner(network, "Float later", **PREPAID)  # no float when its cycle is settled
    removed = float_partner(network, "Float removed")
    member = make_member(network, later, also_linked_to=(removed,))
    network.earn(later, member, "l1", points=400)
    network.earn(removed, member, "r1", points=300)
    cycle, _ = settle_today(network, clock)
    before = settlements(network, cycle)
    assert (before[later], before[removed]) == ((-400, 0, "due"), (-300, 300, "nothing_due"))
    network.tx(lambda tx: set_limits(tx, later, float_overdraft_minor=0))
    network.tx(lambda tx: set_limits(tx, removed, float_overdraft_minor=None))
    assert settlements(network, cycle) == before
    # `pointsnet clearing list` reads the kept amounts: net, from float, by bank ... status
    listed = pointsnet("clearing", "list", env={  # on a terminal wide enough for whole cells
        "POINTSNET_DATABASE_URL": database_url, "POINTSNET_DATA_DIR": str(network.settings.data_dir),
        "POINTSNET_CLOCK": clock.now().isoformat(), "COLUMNS": "250"})
    assert listed.returncode == 0, listed.stderr
    rows = {cells[1]: cells[2:5] + cells[8:9] for cells in (
        [cell.strip() for cell in line.split("│")[1:-1]] for line in listed.stdout.splitlines() if "│" in line)
        if cells and cells[0] == cycle.isoformat()}
    assert rows == {later: ["-400", "", "-400", "due"], removed: ["-300", "300", "0", "nothing_due"],
                    "network": ["700", "-300", "400", "due"]}
