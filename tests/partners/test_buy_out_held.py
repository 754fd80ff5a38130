"""A buy-out pays once, in the final cycle, for the issuer's open postpaid points, and "the network
reimburses every later redemption of those points" (docs/operations.md "Partners", docs/ledger.md
decision 16). Points an open hold reserves in a lot whose expiry date has passed do not expire while
held (ARCHITECTURE "Holds") and a capture redeems them: they are open liability, bought out with the
rest. The lot's free points past its date are not: nothing can redeem them any more. What a void or a
timeout then releases expires at once, as a bought-out lot's points do: postpaid expiry moves no money,
so the network keeps what the buy-out paid for them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from shared.models import Entry, Lot, ObligationLine, Settlement
from shared.partners.lifecycle import terminate
from shared.partners.limits import exposures
from tests.factories import make_member, make_partner, verify_ok

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")


def buy_out(network, partner, rate_ppm=1_000_000):
    return network.tx(lambda tx: terminate(tx, partner, settlement="buy_out", buy_out_rate_ppm=rate_ppm))


def lines_of(network, entry_id):
    return [tuple(row) for row in network.tx(lambda tx: tx.session.execute(
        select(ObligationLine.payer, ObligationLine.payee, ObligationLine.kind, ObligationLine.points,
               ObligationLine.amount_micro).where(ObligationLine.entry_id == entry_id)
        .order_by(ObligationLine.kind, ObligationLine.lot_id)).all(), readonly=True)]


def settled_nets(network, clock) -> dict[str, int]:
    """Each party's net over the settled cycles that carry money (those of the buy-out and after: the
    earn, a year before, moved none)."""
    clock.advance(days=2)
    for cycle in network.tx(lambda tx: tx.session.scalars(
            select(ObligationLine.cycle_date).distinct().order_by(ObligationLine.cycle_date)).all(), readonly=True):
        network.settle(cycle)
    return dict(network.tx(lambda tx: tx.session.execute(
        select(Settlement.party, func.sum(Settlement.net_minor)).group_by(Settlement.party)).all(), readonly=True))


def expiry_points(network, member) -> int:
    return network.tx(lambda tx: tx.session.execute(select(func.coalesce(func.sum(Entry.points), 0)).where(
        Entry.kind == "expiry", Entry.member_id == member)).scalar_one(), readonly=True)


def outstanding(network, partner) -> int:
    return next(e.outstanding_points for e in network.tx(exposures, readonly=True) if e.partner_id == partner)


@pytest.fixture
def held_past_expiry(network, clock):
    """An issuer's lot of 100 points, 60 of them held at a shop since before the lot's date, which has
    now passed: the 60 can still be captured, the other 40 only expire."""
    issuer = make_partner(network, "Issuer", **TERMS)
    shop = make_partner(network, "Shop", **TERMS)
    member = make_member(network, issuer, also_linked_to=(shop,))
    earned = network.earn(issuer, member, "e1", points=100)
    expires = datetime.fromisoformat(earned["lots"][0]["expires_at"])
    clock.set(expires - timedelta(minutes=5))
    hold = network.hold(shop, member, "h1", 60)  # times out in 15 minutes
    clock.set(expires + timedelta(minutes=1))  # the lot is past its date; the 60 are held, not expired
    return issuer, shop, member, hold["hold_id"]


def test_points_held_in_a_lot_past_its_expiry_are_bought_out(network, clock):
    issuer = make_partner(network, "Issuer", **TERMS)
    shop = make_partner(network, "Shop", **TERMS)
    member = make_member(network, issuer, also_linked_to=(shop,))
    earned = network.earn(issuer, member, "e1", points=100)
    expires = datetime.fromisoformat(earned["lots"][0]["expires_at"])
    clock.set(expires - timedelta(minutes=5))
    hold = network.hold(shop, member, "h1", 100)  # reserves all of the lot
    clock.set(expires + timedelta(minutes=1))
    done = buy_out(network, issuer)
    captured = network.capture(shop, hold["hold_id"], 100)  # redeemed after the buy-out
    assert done["outstanding_points_at_termination"] == 100
    assert lines_of(network, captured["entry_id"]) == [("network", shop, "redemption", 100, 100_000_000)]
    verify_ok(network)


def test_only_the_held_points_of_a_lot_past_its_expiry_are_bought_out(network, clock, held_past_expiry):
    issuer, shop, member, hold_id = held_past_expiry
    done = buy_out(network, issuer, 800_000)
    assert done["outstanding_points_at_termination"] == 60  # not the 40 free points past their date
    assert lines_of(network, done["buy_out_entry_id"]) == [(issuer, "network", "prepaid_funding", 60, 48_000_000)]
    captured = network.capture(shop, hold_id, 60)
    assert lines_of(network, captured["entry_id"]) == [("network", shop, "redemption", 60, 60_000_000)]
    network.expire_lots()
    assert expiry_points(network, member) == 40
    nets = settled_nets(network, clock)
    # the issuer pays 80 % of the 60 points once; the network reimburses the shop their capture
    assert (nets[issuer], nets[shop], nets["network"]) == (-48, 60, -12)
    verify_ok(network)


def test_a_partial_capture_after_the_buy_out_is_reimbursed_by_the_network_and_the_rest_expires(
        network, clock, held_past_expiry):
    issuer, shop, member, hold_id = held_past_expiry
    buy_out(network, issuer)
    captured = network.capture(shop, hold_id, 25)
    assert lines_of(network, captured["entry_id"]) == [("network", shop, "redemption", 25, 25_000_000)]
    network.expire_lots()
    assert expiry_points(network, member) == 75  # the 35 released at once, the 40 free ones by the job
    assert network.balance(member)["available"] + network.balance(member)["held"] == 0
    nets = settled_nets(network, clock)
    assert (nets[issuer], nets[shop], nets["network"]) == (-60, 25, 35)  # the network keeps the 35's money
    verify_ok(network)


@pytest.mark.parametrize("release", ["void", "timeout"])
def test_held_points_released_after_the_buy_out_expire_and_the_network_keeps_their_money(
        network, clock, held_past_expiry, release):
    issuer, shop, member, hold_id = held_past_expiry
    buy_out(network, issuer)
    if release == "void":
        network.void(shop, hold_id)
    else:
        clock.advance(minutes=20)
        assert network.expire_holds() == 1
    network.expire_lots()
    assert expiry_points(network, member) == 100  # all of the lot: released points of a due lot expire
    assert network.balance(member)["available"] + network.balance(member)["held"] == 0
    nets = settled_nets(network, clock)
    # postpaid expiry moves no money: the network keeps what the issuer paid for the 60 points
    assert (nets[issuer], nets.get(shop, 0), nets["network"]) == (-60, 0, 60)
    verify_ok(network)


def test_exposure_counts_points_held_in_a_lot_past_its_expiry(network, clock, held_past_expiry):
    issuer, shop, member, hold_id = held_past_expiry
    assert outstanding(network, issuer) == 60  # a capture would still bill the issuer for them
    buy_out(network, issuer)
    assert outstanding(network, issuer) == 0  # the network carries them now


def test_a_buy_out_without_open_points_on_an_empty_network_makes_no_cycle(network, clock):
    """A buy-out of an issuer with no open lot writes no entry: on a network without a single entry it
    leaves no ``cycles`` row behind (the network's first cycle is its first entry's business day), and
    the first real entry's day is then the only cycle."""
    from datetime import date

    from shared.models import Cycle

    issuer = make_partner(network, "Leaving", **TERMS)
    done = buy_out(network, issuer)
    assert done["recorded"] is True and done["buy_out_entry_id"] is None and done["final_cycle"] == "2026-11-20"

    def cycles():
        return network.tx(lambda tx: list(tx.session.scalars(select(Cycle.cycle_date).order_by(Cycle.cycle_date))),
                          readonly=True)

    assert cycles() == []
    clock.advance(days=2)
    staying = make_partner(network, "Staying", **TERMS)
    network.earn(staying, make_member(network, staying), "s1", points=5)
    assert cycles() == [date(2026, 11, 22)]


def test_points_the_issuers_own_hold_reserves_past_the_lots_expiry_are_not_bought_out(network, clock):
    """The issuer's own hold is no liability past its lot's date: captured by the issuer, its points are
    redeemed where they were funded (no money moves), and once the issuer is terminated it captures
    nothing; released, they expire. So the buy-out charges only for what another partner's hold reserves
    there, and a lot only the issuer's hold reserves is not bought out. Until 2026-12-07 the buy-out
    charged for the issuer's own holds too (90 + 20 points here), and the exposure counted them."""
    issuer = make_partner(network, "Issuer", **TERMS)
    shop = make_partner(network, "Shop", **TERMS)
    member = make_member(network, issuer, also_linked_to=(shop,))
    other = make_member(network, issuer)
    shared_lot = network.earn(issuer, member, "e1", points=100)["lots"][0]
    alone = network.earn(issuer, other, "e2", points=50)["lots"][0]
    expires = datetime.fromisoformat(shared_lot["expires_at"])
    clock.set(expires - timedelta(minutes=5))
    network.hold(issuer, member, "h-own", 30)
    network.hold(shop, member, "h-shop", 60)
    network.hold(issuer, other, "h-own-2", 20)
    clock.set(expires + timedelta(minutes=1))
    assert outstanding(network, issuer) == 60
    done = buy_out(network, issuer)
    assert done["outstanding_points_at_termination"] == 60
    assert [line[3:] for line in lines_of(network, done["buy_out_entry_id"])] == [(60, 60_000_000)]
    bought = network.tx(lambda tx: dict(tx.session.execute(select(Lot.id, Lot.bought_out_at)).all()), readonly=True)
    assert bought[shared_lot["lot_id"]] is not None and bought[alone["lot_id"]] is None
    clock.advance(minutes=20)  # every hold times out: what each held expires
    network.expire_holds()
    assert [network.balance(m)["available"] + network.balance(m)["held"] for m in (member, other)] == [0, 0]
    verify_ok(network)
