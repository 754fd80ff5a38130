"""docs/dashboard.md: the webhook page lists cancelled deliveries (never sent: the member withdrew its
consent from the partner) under their own filter, without *Replay*; a replay of a cancelled delivery,
or of one naming a member no longer linked to the partner, is refused with the reason on the page."""

from __future__ import annotations

from sqlalchemy import update

from shared.members.consent import unlink
from shared.models import WebhookDelivery
from shared.webhooks.endpoints import set_endpoint
from tests.dashboard.conftest import BASE, post_form
from tests.factories import make_member
from tests.webhooks.conftest import deliveries


def test_cancelled_deliveries_are_listed_and_not_replayed(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    network.tx(lambda tx: set_endpoint(tx, coffee, "http://127.0.0.1:9/hook"))  # nothing listens there
    member = make_member(network, coffee)
    network.earn(coffee, member, "e1", points=5)
    network.earn(coffee, member, "e2", points=6)
    pending, dead = deliveries(network, partner_id=coffee)
    network.tx(lambda tx: tx.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == dead.id)
                                             .values(status="dead", dead_at=tx.now)))  # its retries ran out
    network.tx(lambda tx: unlink(tx, coffee, member, requested_by="operator"))
    hooks = f"{BASE}/partners/{coffee}/webhooks"
    operator = client_as("operator")
    listed = operator.get(f"{hooks}?status=cancelled")
    assert listed.status_code == 200
    assert f'data-delivery="{pending.id}" data-status="cancelled"' in listed.text
    assert f"deliveries/{pending.id}/replay" not in listed.text and dead.id not in listed.text
    for delivery_id, code in ((pending.id, "delivery_cancelled"), (dead.id, "member_not_linked")):
        refused = post_form(operator, f"{hooks}/deliveries/{delivery_id}/replay", page=hooks)
        assert refused.status_code == 409 and f'data-code="{code}"' in refused.text, refused.text[-2000:]
    assert {d.id: d.status for d in deliveries(network, partner_id=coffee) if d.id in (pending.id, dead.id)} == {
        pending.id: "cancelled", dead.id: "dead"}
