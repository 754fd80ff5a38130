"""Every amount the ledger would write fits its 64-bit columns, or the request is refused before
anything is written (found by a model-based review, 2026-12-04).

10^12 points (the documented maximum) at a point value of 10 fen is 10^19 micro-units: the earn or burn
reached the database and answered 500 (bigint out of range; SQLite: Python int too large). A network
bonus had no upper bound at all.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from shared.errors import InvalidAmount, InvalidPoints, PointsnetError
from shared.ledger.events import MAX_POINTS, Event
from shared.ledger.posting import quote_earn
from shared.models import Entry, Hold
from shared.money import MAX_MICRO
from shared.partners.contracts import ContractTerms, add_contract_version
from shared.partners.limits import record_topup, set_limits
from shared.rules.store import set_rules
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


def test_an_activity_award_whose_money_does_not_fit_is_invalid_amount_not_a_database_error(network):
    """An activity award is an earn at the partner's terms: 10^9 points (the rules' ceiling for an
    activity) at a point value of 100 CNY is 10^19 micro-units of prepaid funding. It reached the
    database and answered 500; it is refused invalid_amount before anything is written, and before
    the float is looked at (as the earn: the float would refuse it too, as float_exhausted)."""
    partner = make_partner(network, "Dear activities", billing="prepaid", point_value="10000")
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=0))
    member = make_member(network, partner)
    largest = MAX_MICRO // (10_000 * 10**6)
    network.tx(lambda tx: set_rules(tx, partner, "activities:\n  survey: {points: 1000000000}\n"
                                                 f"  check-in: {{points: {largest}}}\n"))
    [refused] = network.post(partner, [Event("activity", "s-1", member, activity="survey")])
    assert isinstance(refused, InvalidAmount), refused
    assert _balance(network, member) == 0
    # the largest award that fits is posted, once the float holds it
    network.tx(lambda tx: record_topup(tx, partner, largest * 10_000, "BANK-1"))
    [awarded] = network.post(partner, [Event("activity", "c-1", member, activity="check-in")])
    assert not isinstance(awarded, Exception), awarded
    assert _balance(network, member) == largest
    verify_ok(network)


def test_a_capture_under_a_new_contract_version_whose_money_does_not_fit_is_invalid_amount(network, clock):
    """A capture's redemption lines are written at the terms in force when it is captured, not when the
    hold was placed: a hold placed at 23:55 (Shanghai) for points that fit at the redeemer's point value
    of 1 fen, captured after midnight when a version at 10 fen is in force, would move more money than
    a ledger line holds. It reached the database (500); it is refused invalid_amount before anything
    is written, and the hold stays open: a capture of the points that fit at 10 fen goes through."""
    issuer = make_partner(network, "Issuer")
    redeemer = make_partner(network, "Redeemer", point_value="1")
    member = make_member(network, issuer, also_linked_to=(redeemer,))
    points = FITS + 1  # fits at 1 fen a point, not at 10
    network.earn(issuer, member, "e-1", points=points)
    # added at 23:45 in Shanghai (less than its notice, 10 minutes, before midnight it would take effect
    # a cycle later), the hold placed at 23:55
    clock.set(datetime(2026, 11, 20, 15, 45, tzinfo=timezone.utc))
    network.tx(lambda tx: add_contract_version(tx, redeemer, ContractTerms(point_value="10")))  # next cycle
    clock.set(datetime(2026, 11, 20, 15, 55, tzinfo=timezone.utc))
    hold = network.hold(redeemer, member, "h-1", points)
    clock.advance(minutes=10)  # the next cycle, the hold still open
    with pytest.raises(InvalidAmount, match=f"at most {FITS} at a time"):
        network.capture(redeemer, hold["hold_id"], reference="c-1")
    assert network.tx(lambda tx: tx.session.get(Hold, hold["hold_id"]).status, readonly=True) == "open"
    balance = network.balance(member)
    assert (balance["available"], balance["held"]) == (0, points)
    captured = network.capture(redeemer, hold["hold_id"], FITS, reference="c-2")
    assert (captured["captured"], captured["released"]) == (FITS, 1)
    assert _balance(network, member) == 1
    verify_ok(network)


def test_an_earn_whose_referral_bonus_money_does_not_fit_is_invalid_amount_and_so_is_its_quote(network):
    """The referee's first qualifying earn pays its referrer's bonus in the same unit, after the earn is
    written: a partner-funded bonus of 10^9 points at a point value of 100 CNY is 10^19 micro-units of
    prepaid funding, which no ledger line holds (a 500 that rolled back the earn with it). The earn is
    refused invalid_amount, naming the referral bonus, before anything is written, and its quote
    says the same; the referral stays pending, so a bonus that fits is paid by a later earn."""
    partner = make_partner(network, "Dear referrals", billing="prepaid", point_value="10000")
    network.tx(lambda tx: record_topup(tx, partner, 10**6, "BANK-1"))
    network.tx(lambda tx: set_rules(tx, partner, "referral: {bonus_points: 1000000000}\n"))
    referrer = make_member(network, partner)
    referee = network.enrol(partner, phone="+8613900001111", referrer_member_id=referrer)["member_id"]
    event = Event("earn", "first", referee, points=1)
    with pytest.raises(PointsnetError) as quote:
        network.tx(lambda tx: quote_earn(tx, partner, event), readonly=True)
    [refused] = network.post(partner, [event])
    assert isinstance(refused, InvalidAmount) and refused.status == 422, refused
    assert quote.value.code == "invalid_amount" and str(quote.value) == str(refused)
    assert "referral bonus" in str(refused)
    entries = network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(Entry).where(
        Entry.kind.in_(("earn", "bonus")))).scalar_one(), readonly=True)
    assert entries == 0 and _balance(network, referee) == _balance(network, referrer) == 0
    network.tx(lambda tx: set_rules(tx, partner, "referral: {bonus_points: 1000}\n"))
    assert network.tx(lambda tx: quote_earn(tx, partner, event), readonly=True)["points"] == 1
    earned = network.earn(partner, referee, "first", points=1)
    assert earned["referral_bonus"]["points"] == 1000
    assert (_balance(network, referee), _balance(network, referrer)) == (1, 1000)
    verify_ok(network)
