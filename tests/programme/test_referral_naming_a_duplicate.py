"""A referral that names a duplicate already merged into another member names the survivor
(docs/earn-rules.md): the survivor gets the bonus, as for referrals that named the duplicate before
the merge. A referral to a merged member could never be paid (a merged member is never locked).
The same enrolment repeated with the same referrer is still the same enrolment, even once that
referrer (or the survivor it names) was erased."""

import pytest
from sqlalchemy import select

from shared.errors import UnknownMember, ValidationFailed
from shared.models import Referral
from shared.programme.merge import merge_members
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner, verify_ok


def merged_pair(network, partner):
    network.tx(lambda tx: set_rules(tx, partner, "referral: {bonus_points: 500}\n"))
    survivor, duplicate = make_member(network, partner), make_member(network, partner)
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    return survivor, duplicate


def referrer_of(network, referee):
    return network.tx(lambda tx: tx.session.execute(select(Referral.referrer_member_id).where(
        Referral.referee_member_id == referee)).scalar_one_or_none(), readonly=True)


def test_a_referral_naming_a_merged_duplicate_names_and_pays_the_survivor(network):
    partner = make_partner(network)
    survivor, duplicate = merged_pair(network, partner)
    fields = {"phone": "+8613900001111", "referrer_member_id": duplicate}
    referee = network.enrol(partner, **fields)["member_id"]
    assert referrer_of(network, referee) == survivor
    # the same enrolment repeated (a retry with the duplicate's code again) is still the same enrolment
    assert network.enrol(partner, **fields)["member_id"] == referee
    result = network.earn(partner, referee, "first", points=10)
    assert result["referral_bonus"]["points"] == 500
    assert network.balance(survivor)["available"] == 500
    assert network.balance(duplicate)["available"] == 0
    verify_ok(network)


def test_a_referral_naming_a_duplicate_of_an_erased_survivor_is_refused(network):
    partner = make_partner(network)
    survivor, duplicate = merged_pair(network, partner)
    network.erase_member(survivor)
    with pytest.raises(UnknownMember):
        network.enrol(partner, phone="+8613900002222", referrer_member_id=duplicate)
    assert network.tx(lambda tx: tx.session.execute(select(Referral)).all(), readonly=True) == []


def test_the_same_enrolment_repeated_after_its_referrer_was_erased_is_still_the_same_enrolment(network):
    """docs/earn-rules.md: an existing member cannot be given a referrer "unless it is the same enrolment
    repeated with the same referrer" — a retry after the referrer was erased is answered, not refused."""
    partner = make_partner(network)
    referrer = make_member(network, partner)
    fields = {"phone": "+8613900003333", "referrer_member_id": referrer}
    referee = network.enrol(partner, **fields)["member_id"]
    network.erase_member(referrer)
    assert network.enrol(partner, **fields)["member_id"] == referee
    assert referrer_of(network, referee) == referrer
    with pytest.raises(ValidationFailed):  # another referrer for the existing member is still refused
        network.enrol(partner, phone="+8613900003333", referrer_member_id=make_member(network, partner))


def test_the_same_enrolment_naming_a_duplicate_repeated_after_its_survivor_was_erased_is_the_same(network):
    """The duplicate named the survivor when the member was enrolled; repeated after the survivor was
    erased, the duplicate still names it: the same enrolment, answered, not refused."""
    partner = make_partner(network)
    survivor, duplicate = merged_pair(network, partner)
    fields = {"phone": "+8613900004444", "referrer_member_id": duplicate}
    referee = network.enrol(partner, **fields)["member_id"]
    network.erase_member(survivor)
    assert network.enrol(partner, **fields)["member_id"] == referee
    assert referrer_of(network, referee) == survivor
