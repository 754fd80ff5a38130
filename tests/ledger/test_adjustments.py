"""Operator adjustments: positive ones are network-funded lots from network:adjustments; negative
ones take free points in consumption order, never below zero, with expiry's money rules."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared.errors import InsufficientPoints, InvalidPoints, ReferenceConflict, UnknownMember, ValidationFailed
from shared.ledger.adjustments import adjust_member
from shared.ledger.queries import account_balance
from shared.models import Entry, Lot, ObligationLine
from tests.factories import make_member, make_partner, verify_ok


def adjust(network, member_id, points, reason="goodwill", key=None):
    return network.tx(lambda tx: adjust_member(tx, member_id, points, reason=reason, request_key=key))


def lines_of(network, entry_id):
    return network.tx(lambda tx: tx.session.execute(
        select(ObligationLine.payer, ObligationLine.payee, ObligationLine.kind, ObligationLine.points,
               ObligationLine.amount_micro).where(ObligationLine.entry_id == entry_id)).all(), readonly=True)


def test_a_positive_adjustment_is_its_own_network_funded_lot(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=100)
    result = adjust(network, member, 40)
    assert result["points"] == 40 and result["balance"] == {"available": 140, "held": 0}
    lot = network.tx(lambda tx: tx.session.get(Lot, result["lots"][0]["lot_id"]), readonly=True)
    assert (lot.billing, lot.funder_partner_id, lot.contract_id, lot.points) == ("network", None, None, 40)
    assert network.tx(lambda tx: account_balance(tx, "network:adjustments"), readonly=True) == -40
    assert lines_of(network, result["entry_id"]) == []
    verify_ok(network)


def test_a_negative_adjustment_takes_earliest_expiring_points_and_moves_no_money_for_postpaid(network, clock):
    partner = make_partner(network)
    member = make_member(network, partner)
    first = network.earn(partner, member, "e1", points=30)
    clock.advance(hours=1)
    second = network.earn(partner, member, "e2", points=50)
    result = adjust(network, member, -45)
    assert result["points"] == -45 and result["balance"] == {"available": 35, "held": 0}
    assert result["consumed"] == [{"lot_id": first["lots"][0]["lot_id"], "points": 30},
                                  {"lot_id": second["lots"][0]["lot_id"], "points": 15}]
    assert lines_of(network, result["entry_id"]) == []
    assert network.tx(lambda tx: account_balance(tx, "network:adjustments"), readonly=True) == 45
    verify_ok(network)


def test_a_negative_adjustment_of_prepaid_points_refunds_the_issuer_like_expiry(network):
    partner = make_partner(network, billing="prepaid", point_value="1", breakage_share="0.2")
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=100)
    result = adjust(network, member, -10)
    # value 10 × 1 fen = 10 000 000 micro-fen; the network keeps 20 %, pays back 8 000 000
    assert lines_of(network, result["entry_id"]) == [("network", partner, "breakage_refund", 10, 8_000_000)]
    verify_ok(network)


def test_a_negative_adjustment_never_takes_more_than_is_available(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=20)
    network.hold(partner, member, "h1", 15)
    with pytest.raises(InsufficientPoints):
        adjust(network, member, -6)
    entries = network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(Entry)
                                                      .where(Entry.kind == "adjustment")), readonly=True)
    assert entries == 0
    assert adjust(network, member, -5)["balance"] == {"available": 0, "held": 15}
    verify_ok(network)


def test_expired_points_cannot_be_adjusted_away(network, clock):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=20)
    clock.set(network.settings.lot_expiry(clock.now()))
    with pytest.raises(InsufficientPoints):
        adjust(network, member, -1)
    verify_ok(network)


def test_the_same_request_key_applies_once(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    first = adjust(network, member, 25, key="form-1")
    again = adjust(network, member, 25, key="form-1")
    assert again["entry_id"] == first["entry_id"] and again["repeated"] is True
    assert network.balance(member)["available"] == 25
    with pytest.raises(ReferenceConflict):
        adjust(network, member, 26, key="form-1")
    other = make_member(network, partner)  # the key names one adjustment, whatever member is asked
    with pytest.raises(ReferenceConflict):
        adjust(network, other, 25, key="form-1")
    assert network.balance(other)["available"] == 0
    verify_ok(network)


@pytest.mark.parametrize("points", [0, True, 1.5, "3", 10**13])
def test_an_adjustment_is_a_non_zero_whole_number(network, points):
    member = make_member(network, make_partner(network))
    with pytest.raises(InvalidPoints):
        adjust(network, member, points)


def test_an_adjustment_needs_a_reason_and_an_active_member(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    with pytest.raises(ValidationFailed):
        adjust(network, member, 5, reason="  ")
    network.erase_member(member)
    with pytest.raises(UnknownMember):
        adjust(network, member, 5)
    with pytest.raises(UnknownMember):
        adjust(network, "mem_nobody", 5)
