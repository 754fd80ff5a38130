"""A `member.unlinked` is replayed only while the unlink it tells of holds (docs/partner-integration.md §8):
not once the member is erased (only `member.erased` names it then), nor once the member is linked to the
partner again. Until 2026-12-07 a replay of it was never refused. And cancelled deliveries are pruned, as
delivered ones are, once queued more than the retention ago: they were kept for ever."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.members.consent import unlink
from shared.members.erasure import erase_member
from shared.webhooks.delivery import RETENTION, deliver_due, prune_delivered, replay
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import deliveries, register


def _unlinked(network, receiver) -> tuple[str, str, str, str]:
    """shop's member (linked to books too) unlinked from shop; its member.unlinked delivered."""
    shop, books = make_partner(network, "Shop"), make_partner(network, "Books")
    for partner in (shop, books):
        register(network, receiver, partner)
    member = make_member(network, shop, also_linked_to=(books,))
    network.tx(lambda tx: unlink(tx, shop, member, requested_by="operator"))
    deliver_due(network)
    [told] = deliveries(network, partner_id=shop, event_type="member.unlinked")
    assert told.status == "delivered"
    return shop, books, member, told.id


def _refused(network, receiver, delivery_id: str, says: str) -> None:
    sent = len(receiver.requests)
    with pytest.raises(Exception) as refused:
        replay(network, delivery_id)
    assert (refused.value.code, refused.value.status) == ("member_not_linked", 409), refused.value
    assert says in str(refused.value), refused.value
    assert len(receiver.requests) == sent  # nothing sent again


def test_a_member_unlinked_is_replayed_while_the_unlink_holds(network, receiver):
    shop, _books, member, told = _unlinked(network, receiver)
    sent = len(receiver.requests)
    assert replay(network, told)["status"] == "delivered"
    assert len(receiver.requests) == sent + 1


def test_a_member_unlinked_is_not_replayed_once_the_member_is_erased(network, receiver):
    shop, _books, member, told = _unlinked(network, receiver)
    network.tx(lambda tx: erase_member(tx, member, keyring=network.keyring))
    _refused(network, receiver, told, "erased")


def test_a_stale_member_unlinked_is_not_replayed_once_the_member_links_again(network, receiver):
    shop, books, member, told = _unlinked(network, receiver)
    token = network.mint_link_token(books, member)["link_token"]
    network.link(shop, token)  # consent again
    _refused(network, receiver, told, "linked to")


def test_cancelled_deliveries_are_pruned_after_the_retention(network, clock, receiver):
    shop, _books, member, _told = _unlinked(network, receiver)
    other = make_member(network, shop)
    receiver.always = 500
    network.earn(shop, other, "e-other", points=3)
    deliver_due(network)  # fails: a retry is queued, and then cancelled by the unlink
    queued_at = clock.now()
    network.tx(lambda tx: unlink(tx, shop, other, requested_by="operator"))
    [cancelled] = deliveries(network, status="cancelled")
    clock.set(queued_at + RETENTION - timedelta(seconds=1))
    network.tx(prune_delivered)
    assert deliveries(network, id=cancelled.id)  # kept for the retention, for the operators to see why
    clock.advance(seconds=2)
    assert network.tx(prune_delivered) >= 1
    assert not deliveries(network, id=cancelled.id)
    assert not deliveries(network, status="cancelled")
