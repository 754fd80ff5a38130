"""Referral bonuses: a member enrolled with a referrer earns the referrer a bonus on its first
qualifying earn, exactly once, funded as the rules say."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.errors import UnknownMember, ValidationFailed
from shared.models import Entry, Lot, ReferralBonus
from tests.factories import make_member, make_partner, verify_ok
from tests.partner_api.conftest import assert_problem, enrol
from tests.programme_limits.conftest import lines_of, rules

PARTNER_FUNDED = "referral: {bonus_points: 500, min_spend: 5000}\n"
NETWORK_FUNDED = "referral: {bonus_points: 300, funded_by: network}\n"


def available(partner, member: str) -> int:
    return partner.ok("GET", f"/v1/members/{member}")["balance"]["available"]


def bonuses(network) -> list:
    return network.tx(lambda tx: tx.session.execute(select(ReferralBonus)).scalars().all(), readonly=True)


def test_the_referrer_gets_its_bonus_on_the_referees_first_qualifying_earn_only(shop, network):
    rules(network, shop.partner_id, "base_rate: 1\n" + PARTNER_FUNDED)
    referrer = enrol(shop)
    answer = shop.ok("POST", "/v1/members", {"phone": "+8613912340000", "referrer_member_id": referrer},
                     status=201)
    referee = answer["member_id"]

    small = shop.ok("POST", "/v1/earn", {"member_id": referee, "reference": "small", "amount": 4999})
    assert small.get("referral_bonus") is None and available(shop, referrer) == 0
    first = shop.ok("POST", "/v1/earn", {"member_id": referee, "reference": "first", "amount": 5000})
    assert first["referral_bonus"]["points"] == 500 and first["referral_bonus"]["funded_by"] == "partner"
    assert available(shop, referrer) == 500 and available(shop, referee) == 49 + 50
    second = shop.ok("POST", "/v1/earn", {"member_id": referee, "reference": "second", "amount": 9000})
    assert second.get("referral_bonus") is None and available(shop, referrer) == 500
    [bonus] = bonuses(network)
    assert (bonus.referee_member_id, bonus.referrer_member_id, bonus.points) == (referee, referrer, 500)
    assert bonus.qualifying_entry_id == first["transaction_id"] == bonus.qualifying_entry_id
    # the referrer sees it in its history, as a bonus at this partner
    [movement] = shop.ok("GET", f"/v1/members/{referrer}/history")["movements"]
    assert (movement["kind"], movement["available_change"], movement["partner"]) == ("bonus", 500, "Coffee Shop")
    verify_ok(network)


def test_a_replayed_earn_does_not_post_a_second_bonus(shop, network):
    rules(network, shop.partner_id, PARTNER_FUNDED)
    referrer = enrol(shop)
    referee = enrol(shop, referrer_member_id=referrer)
    body = {"member_id": referee, "reference": "first", "amount": 6000, "points": 10}
    first = shop.ok("POST", "/v1/earn", body, idempotency_key="E-1")
    replay = shop.ok("POST", "/v1/earn", body)  # a new key, same reference: the original result
    assert replay == first and first["referral_bonus"]["points"] == 500
    assert available(shop, referrer) == 500 and len(bonuses(network)) == 1


def test_a_partner_funded_bonus_is_the_partners_lot_with_the_issuance_fee(network):
    partner = make_partner(network, issuance_fee="0.1")
    rules(network, partner, PARTNER_FUNDED)
    referrer = make_member(network, partner)
    referee = network.enrol(partner, phone="+8613900001111", referrer_member_id=referrer)["member_id"]
    earn = network.earn(partner, referee, "first", points=10, amount=5000)
    bonus_entry = earn["referral_bonus"]["transaction_id"]
    lot = network.tx(lambda tx: tx.session.execute(select(Lot).where(Lot.entry_id == bonus_entry)).scalar_one())
    assert (lot.member_id, lot.funder_partner_id, lot.billing, lot.points) == (referrer, partner, "postpaid", 500)
    assert lines_of(network, bonus_entry) == [(partner, "network", "issuance_fee", 500)]
    verify_ok(network)


def test_a_network_funded_bonus_is_its_own_lot_from_network_promotions(partners, network):
    rules(network, "network", NETWORK_FUNDED)
    coffee, books = partners("Coffee"), partners("Books")
    referrer = enrol(coffee)
    referee = enrol(books, referrer_member_id=referrer)  # referred across partners
    first = books.ok("POST", "/v1/earn", {"member_id": referee, "reference": "first", "points": 1})
    assert first["referral_bonus"]["funded_by"] == "network"
    entry_id = first["referral_bonus"]["transaction_id"]
    lot = network.tx(lambda tx: tx.session.execute(select(Lot).where(Lot.entry_id == entry_id)).scalar_one())
    assert (lot.member_id, lot.funder_partner_id, lot.billing, lot.points) == (referrer, None, "network", 300)
    assert lines_of(network, entry_id) == []
    assert available(coffee, referrer) == 300
    verify_ok(network)


def test_the_earning_partners_programme_wins_over_the_networks(shop, network):
    rules(network, "network", NETWORK_FUNDED)
    rules(network, shop.partner_id, "referral: {bonus_points: 50}\n")
    referrer = enrol(shop)
    referee = enrol(shop, referrer_member_id=referrer)
    first = shop.ok("POST", "/v1/earn", {"member_id": referee, "reference": "first", "points": 1})
    assert (first["referral_bonus"]["points"], first["referral_bonus"]["funded_by"]) == (50, "partner")


def test_without_a_programme_no_bonus_and_the_referral_waits(partners, network):
    plain, generous = partners("Plain"), partners("Generous")
    rules(network, generous.partner_id, "referral: {bonus_points: 100}\n")
    referrer = enrol(plain)
    referee = enrol(plain, referrer_member_id=referrer)
    token = plain.ok("POST", f"/v1/members/{referee}/link-tokens")["link_token"]
    generous.ok("POST", "/v1/members", {"link_token": token})
    assert plain.ok("POST", "/v1/earn", {"member_id": referee, "reference": "p-1", "points": 5}).get(
        "referral_bonus") is None
    later = generous.ok("POST", "/v1/earn", {"member_id": referee, "reference": "g-1", "points": 5})
    assert later["referral_bonus"]["points"] == 100 and available(plain, referrer) == 100


def test_activities_do_not_qualify(shop, network):
    rules(network, shop.partner_id, "referral: {bonus_points: 100}\nactivities: {signup: {points: 10}}\n")
    referrer = enrol(shop)
    referee = enrol(shop, referrer_member_id=referrer)
    shop.ok("POST", "/v1/activities", {"member_id": referee, "activity": "signup", "reference": "a-1"})
    assert available(shop, referrer) == 0
    shop.ok("POST", "/v1/earn", {"member_id": referee, "reference": "e-1", "points": 1})
    assert available(shop, referrer) == 100


def test_reversing_the_qualifying_earn_does_not_claw_back_the_bonus(shop, network):
    rules(network, shop.partner_id, "referral: {bonus_points: 100}\n")
    referrer = enrol(shop)
    referee = enrol(shop, referrer_member_id=referrer)
    shop.ok("POST", "/v1/earn", {"member_id": referee, "reference": "first", "points": 20})
    reversal = shop.ok("POST", "/v1/reversals", {"reference": "r-1", "original_reference": "first"})
    assert reversal["points"] == 20 and available(shop, referee) == 0
    assert available(shop, referrer) == 100
    # and the referral is used up: the next earn gives no second bonus
    assert shop.ok("POST", "/v1/earn", {"member_id": referee, "reference": "again", "points": 20}).get(
        "referral_bonus") is None
    assert available(shop, referrer) == 100
    verify_ok(network)


def test_a_refused_earn_posts_no_bonus(shop, network, limits):
    limits(member_daily_earn=10)
    rules(network, shop.partner_id, "referral: {bonus_points: 100}\n")
    referrer = enrol(shop)
    referee = enrol(shop, referrer_member_id=referrer)
    assert_problem(shop.call("POST", "/v1/earn", {"member_id": referee, "reference": "big", "points": 11}),
                   422, "velocity_limit_exceeded")
    assert available(shop, referrer) == 0 and bonuses(network) == []
    # the referrer's bonus is not limited by the referee's limits, nor by its own
    shop.ok("POST", "/v1/earn", {"member_id": referee, "reference": "ok", "points": 10})
    assert available(shop, referrer) == 100


def test_referrals_are_validated_at_enrolment(shop, network):
    assert_problem(shop.call("POST", "/v1/members", {"phone": "+8613912349999",
                                                    "referrer_member_id": "mem_nobody"}), 404, "unknown_member")
    referrer = enrol(shop)
    existing = enrol(shop, phone="+8613912348888")
    # an existing member cannot be given a referrer afterwards
    assert_problem(shop.call("POST", "/v1/members", {"phone": "+8613912348888", "referrer_member_id": referrer}),
                   422, "validation_failed")
    # enrolling the same new member again with the same referrer is the same enrolment
    referee = enrol(shop, phone="+8613912347777", referrer_member_id=referrer)
    assert enrol(shop, phone="+8613912347777", referrer_member_id=referrer) == referee
    assert existing != referee
    with pytest.raises(UnknownMember):
        network.enrol(shop.partner_id, phone="+8613912346666", referrer_member_id="mem_nobody")
    with pytest.raises(ValidationFailed):
        network.enrol(shop.partner_id, phone="+8613912347777", referrer_member_id=existing)


def test_referral_documents_are_validated(network):
    partner = make_partner(network)
    with pytest.raises(ValidationFailed, match="referral.bonus_points"):
        rules(network, partner, "referral: {bonus_points: 0}")
    with pytest.raises(ValidationFailed, match="funded by the network"):
        rules(network, "network", "referral: {bonus_points: 10}")


def test_the_bonus_entry_belongs_to_the_referrer(shop, network):
    rules(network, shop.partner_id, "referral: {bonus_points: 100}\n")
    referrer = enrol(shop)
    referee = enrol(shop, referrer_member_id=referrer)
    first = shop.ok("POST", "/v1/earn", {"member_id": referee, "reference": "first", "points": 1})
    entry = network.tx(lambda tx: tx.session.get(Entry, first["referral_bonus"]["transaction_id"]))
    assert (entry.kind, entry.member_id, entry.partner_id, entry.reference) == ("bonus", referrer, shop.partner_id,
                                                                                None)


def test_reversing_a_qualifying_earn_keeps_the_bonus_and_tells_an_operator(shop, network):
    """The bonus stays when its qualifying earn is reversed (docs/earn-rules.md), so earning and taking the
    earn back is how a partner would farm network-funded bonuses: each such reversal raises
    ``referral_qualifier_reversed`` naming the partner, both members and the bonus; other reversals none."""
    from shared.alerts import list_alerts

    rules(network, "network", NETWORK_FUNDED)
    referrer = enrol(shop)
    referee = enrol(shop, referrer_member_id=referrer)
    first = shop.ok("POST", "/v1/earn", {"member_id": referee, "reference": "first", "amount": 5000, "points": 1})
    assert first["referral_bonus"]["points"] == 300
    shop.ok("POST", "/v1/earn", {"member_id": referee, "reference": "second", "amount": 5000, "points": 5})
    shop.ok("POST", "/v1/reversals", {"reference": "undo-second", "original_reference": "second"})
    assert [a for a in network.tx(lambda tx: list_alerts(tx), readonly=True)
            if a["kind"] == "referral_qualifier_reversed"] == []
    shop.ok("POST", "/v1/reversals", {"reference": "undo-first", "original_reference": "first"})
    assert available(shop, referrer) == 300  # the bonus stays
    [alert] = [a for a in network.tx(lambda tx: list_alerts(tx), readonly=True)
               if a["kind"] == "referral_qualifier_reversed"]
    assert (alert["partner_id"], alert["member_id"]) == (shop.partner_id, referee)
    assert alert["detail"]["referrer_member_id"] == referrer
    assert (alert["detail"]["bonus_points"], alert["detail"]["funded_by"], alert["detail"]["reversed_points"]) == \
        (300, "network", 1)
    verify_ok(network)
