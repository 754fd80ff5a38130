"""A quote is refused exactly when, and with the code with which, the earn of the same body is refused:
a quote never promises points an earn would not post (docs/partner-integration.md, `POST /v1/earn/quote`)."""

import pytest

from shared.errors import PointsnetError
from shared.ledger.events import Event
from shared.ledger.posting import quote_earn
from shared.partners.lifecycle import set_status, terminate
from shared.programme.merge import merge_members
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner


def erase(network, partner, member):
    network.erase_member(member)
    return member


def merge_away(network, partner, member):
    survivor = make_member(network, partner)
    network.tx(lambda tx: merge_members(tx, survivor, member))
    return member


def suspend(network, partner, member):
    network.tx(lambda tx: set_status(tx, partner, "suspended"))
    return member


def end(network, partner, member):
    network.tx(lambda tx: terminate(tx, partner))
    return member


def suspend_and_erase(network, partner, member):
    return erase(network, partner, suspend(network, partner, member))


def another_partners(network, partner, member):
    return make_member(network, make_partner(network))


CASES = [
    ("an erased member", erase, "member_erased"),
    ("a member merged into another", merge_away, "unknown_member"),
    ("a suspended partner", suspend, "partner_suspended"),
    ("a terminated partner", end, "partner_terminated"),
    ("a suspended partner and an erased member: the partner first", suspend_and_erase, "partner_suspended"),
    ("a member of another partner", another_partners, "unknown_member"),
]


@pytest.mark.parametrize("name,arrange,code", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("body", [{"amount": 10_000}, {"points": 50}], ids=["by the rules", "explicit points"])
def test_a_quote_is_refused_as_the_earn_is(network, name, arrange, code, body):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1"))
    assert network.tx(lambda tx: quote_earn(tx, partner, Event("earn", "q", member, **body)))["points"] > 0
    event = Event("earn", "after", arrange(network, partner, member), **body)
    with pytest.raises(PointsnetError) as refusal:
        network.tx(lambda tx: quote_earn(tx, partner, event), readonly=True)
    [outcome] = network.post(partner, [event])
    assert isinstance(outcome, PointsnetError), f"the earn posted {outcome['points']} points"
    assert refusal.value.code == outcome.code == code
