"""A referral that names a duplicate already merged into another member names the survivor
(docs/earn-rules.md): the survivor gets the bonus, as for referrals that named the duplicate before
the merge. A referral to a merged member could never be paid (a merged member is never locked)."""

import pytest
from sqlalchemy import select

from shared.errors import UnknownMember
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
