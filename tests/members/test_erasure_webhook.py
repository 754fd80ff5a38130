"""Partners linked to an erased member are told so (GDPR Art. 19): one ``member.erased`` webhook each,
queued in the erasure's own transaction, naming only the member's opaque id and when it was erased."""

from __future__ import annotations

import pytest

from shared import errors
from shared.models import MemberLink
from shared.webhooks import EVENT_TYPES
from shared.webhooks.delivery import deliver_due
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import bodies, deliveries, receiver, register  # noqa: F401  (fixture)

PHONE, EMAIL = "+8613812345678", "li.lei@example.com"


def _received(receiver, partner_id: str, kind: str) -> list[dict]:
    return [b for b in bodies(receiver.at(f"/hooks/{partner_id}")) if b["type"] == kind]


def test_every_linked_partner_hears_member_erased_once_with_no_personal_data(network, clock, receiver):
    shop, cafe, stranger = (make_partner(network, name) for name in ("Shop", "Cafe", "Stranger"))
    for partner in (shop, cafe, stranger):
        register(network, receiver, partner)
    member = make_member(network, shop, phone=PHONE, email=EMAIL, also_linked_to=(cafe,))
    network.tx(lambda tx: tx.session.query(MemberLink).filter_by(partner_id=shop, member_id=member)
               .update({"customer_ref": "C-77"}))
    network.earn(shop, member, "e-1", points=120)
    deliver_due(network)

    record = network.erase_member(member, reason="DSR-1")
    assert deliver_due(network)["delivered"] >= 2

    assert "member.erased" in EVENT_TYPES
    for partner in (shop, cafe):
        [erased] = _received(receiver, partner, "member.erased")
        assert erased["data"] == {"member_id": member, "erased_at": "2026-11-20T02:00:00Z"}
        assert erased["timestamp"] == "2026-11-20T02:00:00Z" == record["erased_at"].replace("+00:00", "Z")
        # the forfeited points are told as for any expiry, in the same transaction
        [expired] = _received(receiver, partner, "points.expired")
        assert expired["data"]["member_id"] == member and expired["data"]["points"] == 120
    assert receiver.at(f"/hooks/{stranger}") == []
    for request in receiver.requests:  # no contact, name, customer reference or operator's reason
        assert not any(secret in request["body"] for secret in (PHONE, "13812345678", EMAIL, "C-77", "DSR-1"))
    assert len(deliveries(network, event_type="member.erased")) == 2


def test_a_member_with_nothing_left_is_announced_without_points_expired(network, receiver):
    shop = make_partner(network)
    register(network, receiver, shop)
    member = make_member(network, shop)
    assert network.erase_member(member)["entry_id"] is None
    deliver_due(network)
    assert [b["data"]["member_id"] for b in _received(receiver, shop, "member.erased")] == [member]
    assert _received(receiver, shop, "points.expired") == []


def test_a_refused_erasure_announces_nothing_and_an_erasure_is_announced_once(network, receiver):
    shop = make_partner(network)
    register(network, receiver, shop)
    member = make_member(network, shop)
    network.earn(shop, member, "e-1", points=50)
    hold = network.hold(shop, member, "h-1", 10)
    with pytest.raises(errors.HoldsOpen):
        network.erase_member(member)
    assert deliveries(network, event_type="member.erased") == []
    network.void(shop, hold["hold_id"])
    network.erase_member(member)
    with pytest.raises(errors.MemberErased):
        network.erase_member(member)
    deliver_due(network)
    assert [b["data"]["member_id"] for b in _received(receiver, shop, "member.erased")] == [member]
    assert len(deliveries(network, event_type="member.erased")) == 1


def test_the_partner_guide_lists_every_event_type_with_member_erased_and_its_payload():
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "partner-integration.md").read_text()
    for event_type in sorted(EVENT_TYPES):
        assert f"| `{event_type}` |" in guide, f"{event_type} is missing from the webhook events table"
    assert '{"type": "member.erased"' in guide
