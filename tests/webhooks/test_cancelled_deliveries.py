"""What a partner may no longer hear is never sent to it (docs/partner-integration.md §8): once a member
withdraws its consent from the partner, `member.unlinked` is the last event about the member it gets
(a retry queued before is cancelled, a replay refused); once a member is erased, no event names it
again; a terminated partner hears of no member, only `settlement.ready`. Everything else goes on as
before: other partners' deliveries about the member, the partner's deliveries about other members."""

from __future__ import annotations

import json
from datetime import date

import pytest

from shared.members.consent import unlink
from shared.partners.lifecycle import terminate
from shared.programme.merge import merge_members
from shared.webhooks.delivery import Outcome, claim_due, deliver_due, record, replay
from shared.webhooks.outbox import ERASED, TERMINATED, UNLINKED
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import bodies, deliveries, register


def _sent(receiver, partner: str, since: int = 0) -> list[tuple[str, str | None]]:
    """(type, member_id) of what reached the partner's endpoint, in order, after the first ``since``."""
    return [(b["type"], b["data"].get("member_id")) for b in bodies(receiver.at(f"/hooks/{partner}")[since:])]


def _about(network, partner: str, member: str) -> dict[str, str]:
    """The partner's deliveries naming the member: event type -> status (one of each type here)."""
    return {row.event_type: row.status for row in deliveries(network, partner_id=partner)
            if json.loads(row.body)["data"].get("member_id") == member}


def _unlink(network, partner: str, member: str):
    return network.tx(lambda tx: unlink(tx, partner, member, requested_by="operator"))


def test_a_retry_queued_before_the_unlink_is_cancelled_and_never_sent(network, clock, receiver):
    shop, books = make_partner(network, "Shop"), make_partner(network, "Books")
    for partner in (shop, books):
        register(network, receiver, partner)
    member = make_member(network, shop, also_linked_to=(books,))
    other = make_member(network, shop)
    receiver.always = 500
    network.earn(shop, member, "before-unlink", points=5)
    network.earn(books, member, "books-earn", points=6)
    network.earn(shop, other, "other-earn", points=7)
    deliver_due(network)  # every one fails: retries are queued
    tried = {partner: len(receiver.at(f"/hooks/{partner}")) for partner in (shop, books)}
    _unlink(network, shop, member)
    receiver.always = None
    clock.advance(minutes=10)
    deliver_due(network)
    # the shop: member.unlinked, and its retry about the other member; never the withdrawn member's earn
    assert sorted(_sent(receiver, shop, tried[shop])) == [("member.unlinked", member), ("points.earned", other)]
    assert _sent(receiver, books, tried[books]) == [("points.earned", member)]  # another partner's: sent
    assert _about(network, shop, member) == {"points.earned": "cancelled", "member.unlinked": "delivered"}
    [cancelled] = [d for d in deliveries(network, partner_id=shop, status="cancelled")]
    assert cancelled.last_error == UNLINKED and cancelled.claim_token is None
    assert _about(network, shop, other) == {"points.earned": "delivered"}
    assert _about(network, books, member) == {"points.earned": "delivered"}
    clock.advance(days=4)  # past any retry window: still never sent
    deliver_due(network)
    assert ("points.earned", member) not in _sent(receiver, shop, tried[shop])


def test_a_replay_of_an_event_about_a_member_no_longer_linked_is_refused(network, receiver):
    shop = make_partner(network, "Shop")
    register(network, receiver, shop)
    member = make_member(network, shop)
    network.earn(shop, member, "e1", points=5)
    deliver_due(network)
    [earned] = deliveries(network, partner_id=shop, event_type="points.earned")
    _unlink(network, shop, member)
    deliver_due(network)
    sent = len(receiver.requests)
    with pytest.raises(Exception) as refused:
        replay(network, earned.id)
    assert refused.value.code == "member_not_linked" and refused.value.status == 409
    assert len(receiver.requests) == sent  # nothing sent again
    [after] = deliveries(network, id=earned.id)
    assert after.status == "delivered" and after.attempts == earned.attempts
    # the unlink itself may be told again (a receiver that lost it)
    [unlinked] = deliveries(network, partner_id=shop, event_type="member.unlinked")
    assert replay(network, unlinked.id)["status"] == "delivered"
    assert _sent(receiver, shop, sent) == [("member.unlinked", member)]


def test_a_cancelled_delivery_is_never_replayed_even_once_the_member_links_again(network, receiver):
    shop, books = make_partner(network, "Shop"), make_partner(network, "Books")
    for partner in (shop, books):
        register(network, receiver, partner)
    member = make_member(network, shop, also_linked_to=(books,))
    receiver.always = 500
    network.earn(shop, member, "e1", points=5)
    deliver_due(network)
    _unlink(network, shop, member)
    receiver.always = None
    token = network.mint_link_token(books, member)["link_token"]
    network.link(shop, token)  # consent again
    [cancelled] = deliveries(network, partner_id=shop, status="cancelled")
    with pytest.raises(Exception) as refused:
        replay(network, cancelled.id)
    assert refused.value.code == "delivery_cancelled" and refused.value.status == 409
    assert deliveries(network, id=cancelled.id)[0].status == "cancelled"


def test_the_unlink_cancels_what_names_a_duplicate_merged_into_the_member(network, clock, receiver):
    shop = make_partner(network, "Shop")
    register(network, receiver, shop)
    survivor, duplicate = make_member(network, shop), make_member(network, shop)
    receiver.always = 500
    network.earn(shop, duplicate, "dup-earn", points=5)
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    deliver_due(network)
    tried = len(receiver.requests)
    _unlink(network, shop, survivor)
    receiver.always = None
    clock.advance(minutes=10)
    deliver_due(network)
    assert _sent(receiver, shop, tried) == [("member.unlinked", survivor)]
    assert {d.event_type for d in deliveries(network, status="cancelled")} == {"points.earned", "member.merged"}


def test_a_delivery_in_flight_at_the_unlink_may_arrive_but_stays_cancelled(network, receiver):
    """The one case the guide names: a worker sending it at that moment. Its outcome is not recorded over
    the cancellation (it is never tried again)."""
    shop = make_partner(network, "Shop")
    register(network, receiver, shop)
    member = make_member(network, shop)
    network.earn(shop, member, "e1", points=5)
    [claimed] = network.tx(lambda tx: claim_due(tx))
    _unlink(network, shop, member)
    assert network.tx(lambda tx: record(tx, claimed, Outcome(200, None, 3))) == "stale"
    [row] = deliveries(network, id=claimed.id)
    assert row.status == "cancelled" and row.delivered_at is None


def test_an_erasure_cancels_every_partners_retries_naming_the_member(network, clock, receiver):
    shop, books = make_partner(network, "Shop"), make_partner(network, "Books")
    for partner in (shop, books):
        register(network, receiver, partner)
    member = make_member(network, shop, also_linked_to=(books,))
    other = make_member(network, shop, also_linked_to=(books,))
    network.earn(shop, member, "delivered-before", points=3)
    deliver_due(network)
    [delivered] = deliveries(network, partner_id=shop, event_type="points.earned")
    receiver.always = 500
    network.earn(shop, member, "e1", points=5)
    network.earn(books, member, "b1", points=6)
    network.earn(shop, other, "o1", points=7)
    deliver_due(network)
    tried = {partner: len(receiver.at(f"/hooks/{partner}")) for partner in (shop, books)}
    network.erase_member(member)
    receiver.always = None
    clock.advance(minutes=10)
    deliver_due(network)
    for partner in (shop, books):  # the erasure's own events; never the retries naming the member
        after = _sent(receiver, partner, tried[partner])
        assert ("points.earned", member) not in after
        assert ("member.erased", member) in after and ("points.expired", member) in after
    assert ("points.earned", other) in _sent(receiver, shop, tried[shop])  # another member's: sent
    cancelled = deliveries(network, status="cancelled")
    assert len(cancelled) == 2 and {d.last_error for d in cancelled} == {ERASED}
    assert {json.loads(d.body)["data"]["member_id"] for d in cancelled} == {member}
    with pytest.raises(Exception) as refused:  # and no replay names it again
        replay(network, delivered.id)
    assert refused.value.code == "member_not_linked"
    [erased] = deliveries(network, partner_id=shop, event_type="member.erased")
    assert replay(network, erased.id)["status"] == "delivered"  # the erasure itself may be told again


def test_a_retry_queued_before_a_merge_still_arrives_naming_the_duplicate(network, clock, receiver):
    """Not cancelled: it tells real points. The guide says to map `from` to `into`."""
    shop = make_partner(network, "Shop")
    register(network, receiver, shop)
    survivor, duplicate = make_member(network, shop), make_member(network, shop)
    receiver.always = 500
    network.earn(shop, duplicate, "dup-earn", points=5)
    deliver_due(network)
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    receiver.always = None
    clock.advance(minutes=10)
    deliver_due(network)
    assert ("points.earned", duplicate) in _sent(receiver, shop)
    assert not deliveries(network, status="cancelled")


def test_a_terminated_partner_hears_of_no_member_but_still_gets_settlement_ready(network, clock, receiver):
    shop, books = make_partner(network, "Shop"), make_partner(network, "Books")
    for partner in (shop, books):
        register(network, receiver, partner)
    member = make_member(network, shop, also_linked_to=(books,))
    network.earn(shop, member, "e1", points=50)
    deliver_due(network)
    [delivered] = deliveries(network, partner_id=shop, event_type="points.earned")
    receiver.always = 500
    network.earn(shop, member, "e2", points=5)
    network.burn(books, member, "b1", 3)
    deliver_due(network)
    tried = {partner: len(receiver.at(f"/hooks/{partner}")) for partner in (shop, books)}
    network.tx(lambda tx: terminate(tx, shop))
    receiver.always = None
    network.grant_bonus(member, 7, reason="welcome")  # a network bonus: every partner linked to the member
    clock.advance(days=1)
    network.settle(date(2026, 11, 20))
    deliver_due(network)
    assert [t for t, _ in _sent(receiver, shop, tried[shop])] == ["settlement.ready"]
    assert sorted(t for t, _ in _sent(receiver, books, tried[books])) == [
        "points.earned", "points.redeemed", "settlement.ready"]
    [cancelled] = deliveries(network, partner_id=shop, status="cancelled")
    assert cancelled.event_type == "points.earned" and cancelled.last_error == TERMINATED
    with pytest.raises(Exception) as refused:
        replay(network, delivered.id)
    assert refused.value.code == "partner_terminated"
    [ready] = deliveries(network, partner_id=shop, event_type="settlement.ready")
    assert replay(network, ready.id)["status"] == "delivered"  # what it still settles goes on
