"""A buy-out against what runs beside it and changes the issuer's lots: another partner's reversal
that returns points to a spent lot, a merge that moves a lot to another member (docs/ledger.md,
decision 16: "the issuer pays for those points once").

Each test holds one unit of work at a chosen point while a second one runs (tests/interleave.py).
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from shared.ledger import posting as posting_module
from shared.ledger.rules import take_in_order
from shared.models import Lot, ObligationLine
from shared.partners import lifecycle
from shared.partners.lifecycle import terminate
from shared.programme.merge import merge_members
from tests.factories import make_member, make_partner, verify_ok
from tests.interleave import Pause, overlap

pytestmark = pytest.mark.postgres
TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")


def buy_out(network, partner):
    return network.tx(lambda tx: terminate(tx, partner, settlement="buy_out", buy_out_rate_ppm=1_000_000))


def issuer_lot(network, issuer):
    return network.tx(lambda tx: tx.session.execute(select(Lot.remaining, Lot.bought_out_at)
                                                    .where(Lot.funder_partner_id == issuer)).one(), readonly=True)


def payers(network, entry_id, kind="redemption") -> set[str]:
    return network.tx(lambda tx: set(tx.session.execute(select(ObligationLine.payer).where(
        ObligationLine.entry_id == entry_id, ObligationLine.kind == kind)).scalars()), readonly=True)


def issuer_pays(network, issuer) -> int:
    """The points the issuer pays for, net: its funding (buy-out, reversals), redemptions it reimburses
    less those reversed."""
    rows = network.tx(lambda tx: tx.session.execute(select(ObligationLine.points).where(
        ObligationLine.payer == issuer, ObligationLine.kind.in_(("prepaid_funding", "redemption")))).all(),
        readonly=True)
    return sum(points for (points,) in rows)


def spent_at_a_shop(network, clock):
    """The issuer's only lot (400 points) spent in full at a shop, a day before the race."""
    issuer = make_partner(network, "Issuer", **TERMS)
    shop = make_partner(network, "Shop", **TERMS)
    member = make_member(network, issuer, also_linked_to=(shop,))
    network.earn(issuer, member, "e1", points=400)
    network.burn(shop, member, "b1", 400)  # the issuer's lot is empty now: not open, not bought out
    clock.advance(days=1)
    network.earn(shop, make_member(network, shop), "today", points=1)  # today's cycle row exists before the race
    return issuer, shop, member


def test_a_reversal_into_a_spent_lot_racing_a_buy_out_leaves_the_lot_bought_out(network, clock, monkeypatch):
    """The shop reverses its burn of the issuer's spent lot while the issuer is terminated with a buy-out.
    The reversal, having read no buy-out, holds the termination off until it commits (a posting that
    returns points to the issuer's lots holds off its termination), so the buy-out then counts the
    returned points; unguarded, the termination neither waited nor bought the lot out, and the shop's
    next burn of those points billed the departed issuer."""
    issuer, shop, member = spent_at_a_shop(network, clock)
    pause = Pause().after(monkeypatch, posting_module, "buy_out_rate")  # the reversal has read no buy-out
    both = overlap(lambda: network.reverse(shop, "r1", "b1"), lambda: buy_out(network, issuer), pause)
    assert isinstance(both.first, dict), both.first
    assert isinstance(both.second, dict), both.second
    assert both.second_waited
    assert both.second["outstanding_points_at_termination"] == 400
    lot = issuer_lot(network, issuer)
    assert lot.remaining == 400 and lot.bought_out_at is not None
    burn = network.burn(shop, member, "b2", 400)
    assert payers(network, burn["entry_id"]) == {"network"}
    assert issuer_pays(network, issuer) == 400  # b1 reimbursed and refunded by r1; the 400 bought out
    verify_ok(network)


def test_a_reversal_into_a_spent_lot_after_a_buy_out_buys_it_out(network, clock, monkeypatch):
    """The other order: the termination (its buy-out finds the lot empty) goes first; the reversal
    waits for it, reads the buy-out and buys the lot out with the points it returns."""
    issuer, shop, member = spent_at_a_shop(network, clock)
    # in the termination, the issuer's locks held (a buy-out that finds no open lot enters no cycle)
    pause = Pause().after(monkeypatch, lifecycle, "lock_partner")
    both = overlap(lambda: buy_out(network, issuer), lambda: network.reverse(shop, "r1", "b1"), pause)
    assert isinstance(both.first, dict), both.first
    assert isinstance(both.second, dict), both.second
    assert both.second_waited
    assert both.first["outstanding_points_at_termination"] == 0
    lot = issuer_lot(network, issuer)
    assert lot.remaining == 400 and lot.bought_out_at is not None
    assert payers(network, both.second["entry_id"], "prepaid_funding") == {issuer}
    burn = network.burn(shop, member, "b2", 400)
    assert payers(network, burn["entry_id"]) == {"network"}
    assert issuer_pays(network, issuer) == 400
    verify_ok(network)


def test_a_buy_out_racing_a_merge_and_a_burn_has_the_issuer_pay_once(network, clock, monkeypatch):
    """The issuer's lot sits with a duplicate member. The buy-out reads the holders (the duplicate);
    before it locks them an operator merges the duplicate into its survivor (the lot moves there) and a
    shop's burn of the survivor reads the lot, not bought out. The buy-out locks the survivor too once
    it sees the lot there, so it waits for the burn and does not count the points the burn redeemed
    (billed to the issuer); unguarded, it bought the 400 points out as well: the issuer paid twice."""
    issuer = make_partner(network, "Issuer", **TERMS)
    shop = make_partner(network, "Shop", **TERMS)
    duplicate = make_member(network, issuer)
    survivor = make_member(network, shop)
    network.earn(issuer, duplicate, "e1", points=400)
    clock.advance(days=1)
    network.earn(shop, make_member(network, shop), "today", points=1)  # today's cycle row exists
    term_paused, term_go = threading.Event(), threading.Event()
    burn_paused, burn_go = threading.Event(), threading.Event()
    real_holders = lifecycle._holders

    def holders_then_wait(tx, partner_id):  # the buy-out has read the holders (the duplicate), before locking them
        result = real_holders(tx, partner_id)
        if threading.current_thread().name == "termination" and not term_paused.is_set():
            term_paused.set()
            term_go.wait(10)
        return result

    def take_then_wait(lots, points):  # the burn has read the survivor's lots under its lock
        plan = take_in_order(lots, points)
        if threading.current_thread().name == "burn":
            burn_paused.set()
            burn_go.wait(10)
        return plan

    monkeypatch.setattr(lifecycle, "_holders", holders_then_wait)
    monkeypatch.setattr(posting_module, "take_in_order", take_then_wait)
    outcomes = {}

    def start(name, unit):
        def run():
            try:
                outcomes[name] = unit()
            except Exception as exc:  # asserted below
                outcomes[name] = exc

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    termination = start("termination", lambda: buy_out(network, issuer))
    assert term_paused.wait(10)
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))  # the lot is the survivor's now
    burn = start("burn", lambda: network.burn(shop, survivor, "b1", 400))
    assert burn_paused.wait(10)
    term_go.set()
    termination.join(1)
    assert termination.is_alive()  # it waits for the survivor's lock, which the burn holds
    burn_go.set()
    termination.join(10)
    burn.join(10)
    assert not termination.is_alive() and not burn.is_alive()
    assert isinstance(outcomes["termination"], dict), outcomes["termination"]
    assert isinstance(outcomes["burn"], dict), outcomes["burn"]
    assert outcomes["termination"]["outstanding_points_at_termination"] == 0
    assert payers(network, outcomes["burn"]["entry_id"]) == {issuer}
    assert issuer_pays(network, issuer) == 400
    verify_ok(network)
