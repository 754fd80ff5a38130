"""Reversals that reach a lot its issuer sold to the network when it left (a buy-out).

The buy-out paid for the points a lot held at the termination; from then on the network reimburses
the lot's redemptions. A reversal afterwards must not leave either side paying for points it does
not carry: points that come back to the lot from a redemption the issuer paid for are funded by the
issuer at the buy-out's rate; an earn reversal cannot take back points the network now carries.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shared.models import ObligationLine, Settlement
from shared.partners.lifecycle import PartnerTerminated, terminate
from tests.factories import make_member, make_partner, verify_ok

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")


def settled_nets(network, clock) -> dict[str, int]:
    clock.advance(days=2)
    network.settle_due()
    return dict(network.tx(lambda tx: tx.session.execute(
        select(Settlement.party, func.sum(Settlement.net_minor)).group_by(Settlement.party)).all(), readonly=True))


def buy_out(network, partner, rate_ppm):
    return network.tx(lambda tx: terminate(tx, partner, settlement="buy_out", buy_out_rate_ppm=rate_ppm))


@pytest.mark.parametrize("rate_ppm,issuer_net,network_net", [(1_000_000, -500, 0), (800_000, -400, -100)])
def test_points_redeemed_before_a_buy_out_and_returned_after_are_funded_by_the_issuer(
        network, clock, rate_ppm, issuer_net, network_net):
    issuer = make_partner(network, "Issuer", **TERMS)
    shop = make_partner(network, "Shop", **TERMS)
    member = make_member(network, issuer, also_linked_to=(shop,))
    network.earn(issuer, member, "e1", points=500)
    network.burn(shop, member, "b1", 400)  # the issuer reimburses the shop 400
    clock.advance(days=1)
    buy_out(network, issuer, rate_ppm)  # the lot holds 100: the issuer pays rate × 100
    clock.advance(days=1)
    reversal = network.reverse(shop, "r1", "b1")  # the shop refunds the issuer 400; the points are the lot's again
    lines = network.tx(lambda tx: tx.session.execute(
        select(ObligationLine.payer, ObligationLine.payee, ObligationLine.kind, ObligationLine.points,
               ObligationLine.amount_micro).where(ObligationLine.entry_id == reversal["entry_id"])
        .order_by(ObligationLine.kind)).all(), readonly=True)
    assert [tuple(line) for line in lines] == [
        (issuer, "network", "prepaid_funding", 400, 400 * rate_ppm),  # funded as the buy-out funded the rest
        (issuer, shop, "redemption", -400, -400_000_000)]
    network.burn(shop, member, "b2", 500)  # the whole lot, reimbursed by the network now
    nets = settled_nets(network, clock)
    # The shop redeemed 500 points in all; the issuer bore them all, less what the buy-out's rate spared it
    # on the 500 points the network took over (100 at the termination, 400 returned after it).
    assert (nets[shop], nets[issuer], nets.get("network", 0)) == (500, issuer_net, network_net)
    assert sum(nets.values()) == 0
    verify_ok(network)


def test_points_redeemed_after_a_buy_out_and_returned_move_no_buy_out_money(network, clock):
    issuer = make_partner(network, "Issuer", **TERMS)
    shop = make_partner(network, "Shop", **TERMS)
    member = make_member(network, issuer, also_linked_to=(shop,))
    network.earn(issuer, member, "e1", points=500)
    clock.advance(days=1)
    buy_out(network, issuer, 1_000_000)  # pays 500: all the lot holds
    network.burn(shop, member, "b1", 300)  # reimbursed by the network
    reversal = network.reverse(shop, "r1", "b1", 100)
    lines = network.tx(lambda tx: tx.session.execute(
        select(ObligationLine.payer, ObligationLine.payee, ObligationLine.kind, ObligationLine.points)
        .where(ObligationLine.entry_id == reversal["entry_id"])).all(), readonly=True)
    assert [tuple(line) for line in lines] == [("network", shop, "redemption", -100)]  # the buy-out covered them
    nets = settled_nets(network, clock)
    assert (nets[issuer], nets[shop], nets["network"]) == (-500, 200, 300)
    verify_ok(network)


def test_an_earn_reversal_cannot_take_back_points_bought_out_by_the_network(network, clock):
    """After its termination the issuer posts nothing, a reversal neither (one that waited for the
    termination is refused once it has its lock); the points it bought out stay the member's."""
    issuer = make_partner(network, "Issuer", **TERMS)
    member = make_member(network, issuer)
    network.earn(issuer, member, "e1", points=500)
    network.reverse(issuer, "r0", "e1", 100)  # before the termination: as always
    clock.advance(days=1)
    buy_out(network, issuer, 1_000_000)  # pays 400, for the 400 points the lot holds
    with pytest.raises(PartnerTerminated):
        network.reverse(issuer, "r1", "e1")
    assert network.balance(member)["available"] == 400  # the network carries them; the issuer paid for them
    nets = settled_nets(network, clock)
    assert (nets[issuer], nets["network"]) == (-400, 400)
    verify_ok(network)


def lines_of(network, entry_id: str) -> list[tuple]:
    return [tuple(row) for row in network.tx(lambda tx: tx.session.execute(
        select(ObligationLine.payer, ObligationLine.payee, ObligationLine.kind, ObligationLine.points)
        .where(ObligationLine.entry_id == entry_id).order_by(ObligationLine.kind)).all(), readonly=True)]


def test_who_paid_the_redemption_decides_not_the_times(network, clock):
    """A burn's unit may start before the buy-out's and take the member's lock after it commits: it is
    reimbursed by the network (the lot is bought out by then), so the buy-out covered its points and
    their return is not funded again, whatever its posted_at says."""
    issuer = make_partner(network, "Issuer", **TERMS)
    shop = make_partner(network, "Shop", **TERMS)
    member = make_member(network, issuer, also_linked_to=(shop,))
    network.earn(issuer, member, "e1", points=500)
    clock.advance(days=1)
    began = clock.now()
    buy_out(network, issuer, 1_000_000)  # pays 500
    clock.set(began - timedelta(seconds=1))  # the burn's unit began first, and waited for the member's lock
    burn = network.burn(shop, member, "b1", 400)
    assert lines_of(network, burn["entry_id"]) == [("network", shop, "redemption", 400)]
    clock.set(began + timedelta(days=1))
    reversal = network.reverse(shop, "r1", "b1")
    assert lines_of(network, reversal["entry_id"]) == [("network", shop, "redemption", -400)]
    nets = settled_nets(network, clock)
    assert (nets[issuer], nets["network"], nets.get(shop, 0)) == (-500, 500, 0)
    verify_ok(network)


def test_a_lot_spent_before_the_buy_out_is_bought_out_when_points_come_back_to_it(network, clock):
    """A lot with nothing left at the termination was not bought out; points a reversal returns to it
    afterwards are funded at the buy-out's rate and the lot is bought out then: the terminated issuer
    does not become the payer of its redemptions again."""
    issuer = make_partner(network, "Issuer", **TERMS)
    shop = make_partner(network, "Shop", **TERMS)
    member = make_member(network, issuer, also_linked_to=(shop,))
    network.earn(issuer, member, "e1", points=500)
    network.burn(shop, member, "b1", 500)  # the issuer reimburses 500; the lot is spent
    clock.advance(days=1)
    assert buy_out(network, issuer, 800_000)["outstanding_points_at_termination"] == 0
    clock.advance(days=1)
    reversal = network.reverse(shop, "r1", "b1", 300)
    assert lines_of(network, reversal["entry_id"]) == [(issuer, "network", "prepaid_funding", 300),
                                                       (issuer, shop, "redemption", -300)]
    again = network.burn(shop, member, "b2", 300)
    assert lines_of(network, again["entry_id"]) == [("network", shop, "redemption", 300)]
    nets = settled_nets(network, clock)
    # the shop redeemed 500 in all; the issuer bore 200 in full and 300 at the buy-out's 80 %
    assert (nets[shop], nets[issuer], nets["network"]) == (500, -440, -60)
    verify_ok(network)
