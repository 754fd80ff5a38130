"""A referral bonus is announced to the referrer's partners: the partner where the friend bought
posts it, and it may not be one the referrer is linked to (docs/partner-integration.md §8)."""

from __future__ import annotations

import pytest

from shared.rules.store import set_rules
from shared.webhooks.delivery import deliver_due
from shared.webhooks.endpoints import disable_endpoint
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import bodies, register


def _refer(network, referrer: str, at: str, funded_by: str, phone: str) -> dict:
    """The referrer's friend enrols at ``at`` and buys there: the referrer's 500-point bonus."""
    network.tx(lambda tx: set_rules(tx, at, f"referral: {{bonus_points: 500, funded_by: {funded_by}}}\n"))
    friend = network.enrol(at, phone=phone, referrer_member_id=referrer)["member_id"]
    answer = network.earn(at, friend, f"first-buy-{phone}", points=10)
    assert answer["referral_bonus"]["points"] == 500
    return answer


def _about(receiver, member: str) -> dict[str, list[dict]]:
    """Per receiving path, the events naming ``member``."""
    found: dict[str, list[dict]] = {}
    for request, body in zip(receiver.requests, bodies(receiver.requests)):
        if body["data"].get("member_id") == member:
            found.setdefault(request["path"], []).append(body)
    return found


@pytest.mark.parametrize("funded_by", ["partner", "network"])
def test_a_bonus_posted_at_a_partner_the_referrer_is_not_linked_to_goes_to_every_partner_it_is_linked_to(
        network, receiver, funded_by):
    coffee, air, books, stranger = (make_partner(network, name) for name in ("CoffeeCo", "AirLink", "BookMart",
                                                                             "Stranger"))
    for partner in (coffee, air, books, stranger):
        register(network, receiver, partner)
    referrer = make_member(network, coffee, also_linked_to=(air,))
    _refer(network, referrer, books, funded_by, "+8613900005555")
    deliver_due(network)

    about = _about(receiver, referrer)
    assert set(about) == {f"/hooks/{coffee}", f"/hooks/{air}"}  # never BookMart, nor a stranger
    for partner in (coffee, air):
        [event] = about[f"/hooks/{partner}"]
        assert event["type"] == "points.earned" and event["data"]["points"] == 500
        assert event["data"]["funded_by"] == funded_by and event["data"]["balance"]["available"] == 500
        assert "reference" not in event["data"]  # nothing of BookMart's own references
    assert all(b["data"].get("member_id") != referrer for b in bodies(receiver.at(f"/hooks/{books}")))


def test_a_bonus_posted_at_a_partner_the_referrer_is_linked_to_goes_to_that_partner_only(network, receiver):
    coffee, books = make_partner(network, "CoffeeCo"), make_partner(network, "BookMart")
    for partner in (coffee, books):
        register(network, receiver, partner)
    referrer = make_member(network, coffee, also_linked_to=(books,))
    _refer(network, referrer, books, "partner", "+8613900005556")
    deliver_due(network)
    assert [(path, [e["type"] for e in events]) for path, events in _about(receiver, referrer).items()] == \
        [(f"/hooks/{books}", ["points.earned"])]


def test_a_linked_posting_partner_without_an_endpoint_is_not_replaced_by_the_others(network, receiver):
    """The posting partner is linked to the referrer but does not listen: the event is its alone, as for
    any of its own earns, and the referrer's other partners are not told of it instead."""
    coffee, books = make_partner(network, "CoffeeCo"), make_partner(network, "BookMart")
    register(network, receiver, coffee)
    register(network, receiver, books)
    network.tx(lambda tx: disable_endpoint(tx, books))
    referrer = make_member(network, coffee, also_linked_to=(books,))
    _refer(network, referrer, books, "partner", "+8613900005557")
    deliver_due(network)
    assert _about(receiver, referrer) == {}
