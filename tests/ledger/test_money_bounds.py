"""Every amount the ledger would write fits its 64-bit columns, or the request is refused before
anything is written (found by a model-based review, 2026-12-04).

10^12 points (the documented maximum) at a point value of 10 fen is 10^19 micro-units: the earn or burn
reached the database and answered 500 (bigint out of range; SQLite: Python int too large). A network
bonus had no upper bound at all.
"""

from __future__ import annotations

import pytest

from shared.errors import InvalidAmount, InvalidPoints
from shared.ledger.events import MAX_POINTS
from shared.money import MAX_MICRO
from tests.factories import make_member, make_partner, verify_ok

TEN_FEN = 10 * 10**6  # micro-units per point
FITS = MAX_MICRO // TEN_FEN  # the most points one line can carry at ten fen


def _balance(network, member_id: str) -> int:
    return network.balance(member_id)["available"]


def test_an_earn_whose_prepaid_funding_would_not_fit_is_refused_and_writes_nothing(network):
    partner = make_partner(network, "Dear points", billing="prepaid", point_value="10")
    member = make_member(network, partner)
    with pytest.raises(InvalidAmount, match=f"at most {FITS} at a time"):
        network.earn(partner, member, "e-1", points=MAX_POINTS)
    assert _balance(network, member) == 0
    network.earn(partner, member, "e-2", points=FITS)  # the largest that fits is posted
    assert _balance(network, member) == FITS
    verify_ok(network)


def test_a_burn_whose_reimbursement_would_not_fit_is_refused_and_takes_nothing(network):
    issuer = make_partner(network, "Issuer")
    redeemer = make_partner(network, "Dear redeemer", point_value="10")
    member = make_member(network, issuer, also_linked_to=(redeemer,))
    network.earn(issuer, member, "e-1", points=MAX_POINTS)
    with pytest.raises(InvalidAmount):
        network.burn(redeemer, member, "b-1", MAX_POINTS)
    assert _balance(network, member) == MAX_POINTS
    network.burn(redeemer, member, "b-2", FITS)
    assert _balance(network, member) == MAX_POINTS - FITS
    verify_ok(network)


def test_a_network_bonus_has_the_points_ceiling_of_an_earn(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    with pytest.raises(InvalidPoints):
        network.grant_bonus(member, MAX_POINTS + 1, reason="too big")
    network.grant_bonus(member, MAX_POINTS, reason="largest")
    assert _balance(network, member) == MAX_POINTS
    verify_ok(network)
