"""The delivery job checks, as it claims a batch, that the partner may still hear each message
(docs/partner-integration.md §8): one naming a member no longer linked to the partner, or erased, or
about a member to a terminated partner, is cancelled, never sent. An unlink, an erasure or a termination
cancels what is pending in its own transaction; the check at the claim catches what that could not see:
a message an event committed at the same moment queued, one a worker of the previous release queued
(a rolling upgrade). Until 2026-12-07 the job sent whatever was pending. Written here by putting the
rows back as such a moment leaves them: pending, after the unlink, erasure or termination."""

from __future__ import annotations

from sqlalchemy import update

from shared.members.consent import unlink
from shared.models import WebhookDelivery
from shared.webhooks.delivery import deliver_due
from shared.webhooks.outbox import ERASED, TERMINATED, UNLINKED
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import bodies, consent_cases, deliveries, register


def _left_pending(network) -> set[str]:
    """What the unlink, erasure and termination cancelled, pending again as a racing event leaves it."""
    ids = {row.id for row in deliveries(network, status="cancelled")}
    network.tx(lambda tx: tx.session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(
        status="pending", last_error=None)))
    return ids


def test_the_job_cancels_what_its_partner_may_no_longer_hear_and_sends_the_rest(network, receiver):
    cases = consent_cases(network, lambda partner: register(network, receiver, partner))
    ordinary, withdrawn, erased, gone = cases.ordinary, cases.withdrawn, cases.erased, cases.gone
    racing = _left_pending(network)
    assert len(racing) == 3
    deliver_due(network, limit=1)  # batches of one: a batch all cancelled does not end the run
    sent = [(b["type"], b["data"].get("member_id")) for b in bodies(receiver.requests)]
    assert sorted(sent) == sorted([
        ("points.earned", ordinary), ("points.earned", withdrawn),  # to books, still linked
        ("member.unlinked", withdrawn), ("points.expired", erased), ("member.erased", erased)])
    assert not any(r["path"] == f"/hooks/{gone}" for r in receiver.requests)
    rows = {row.id: row for row in deliveries(network)}
    assert {d for d, row in rows.items() if row.status == "cancelled"} == racing
    assert all(row.status == "delivered" for d, row in rows.items() if d not in racing)
    assert sorted(rows[d].last_error for d in racing) == sorted([UNLINKED, ERASED, TERMINATED])
    assert all(rows[d].attempts == 0 and rows[d].claim_token is None for d in racing)  # never tried


def test_a_member_unlinked_is_not_sent_once_the_member_links_again(network, receiver):
    shop, books = make_partner(network, "Shop"), make_partner(network, "Books")
    for partner in (shop, books):
        register(network, receiver, partner)
    member = make_member(network, shop, also_linked_to=(books,))
    network.tx(lambda tx: unlink(tx, shop, member, requested_by="operator"))
    network.link(shop, network.mint_link_token(books, member)["link_token"])  # consent again, before it went
    deliver_due(network)
    [told] = deliveries(network, partner_id=shop, event_type="member.unlinked")
    assert told.status == "cancelled" and "linked to the partner again" in told.last_error
    assert not [b for b in bodies(receiver.requests) if b["type"] == "member.unlinked"]
