"""docs/dashboard.md: *Replay* sends an event again now. To a disabled endpoint nothing is sent, so the
replay is refused (409 endpoint_disabled) with the reason on the webhook page: the message is left as
it was and no replay is audited."""

from __future__ import annotations

from sqlalchemy import select

from shared.access import audit
from shared.models import WebhookDelivery
from shared.webhooks.endpoints import disable_endpoint, set_endpoint
from shared.webhooks.outbox import emit
from tests.dashboard.conftest import BASE, post_form


def _row(network, delivery_id: str) -> tuple:
    return tuple(network.tx(lambda tx: tx.session.execute(
        select(WebhookDelivery.status, WebhookDelivery.attempts, WebhookDelivery.next_attempt_at,
               WebhookDelivery.retry_from, WebhookDelivery.claim_token)
        .where(WebhookDelivery.id == delivery_id)).one(), readonly=True))


def test_replaying_a_delivery_whose_endpoint_is_disabled_is_refused_with_the_reason(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    network.tx(lambda tx: set_endpoint(tx, coffee, "http://127.0.0.1:9/hook"))
    [msg] = network.tx(lambda tx: emit(tx, "tier.changed", {"n": 1}, partner_ids=[coffee]))
    network.tx(lambda tx: disable_endpoint(tx, coffee))
    before = _row(network, msg)
    hooks = f"{BASE}/partners/{coffee}/webhooks"
    refused = post_form(client_as("operator"), f"{hooks}/deliveries/{msg}/replay", page=hooks)
    assert refused.status_code == 409 and 'data-code="endpoint_disabled"' in refused.text
    assert "webhooks set" in refused.text or "enable" in refused.text.lower()
    assert f'data-delivery="{msg}" data-status="pending"' in refused.text  # the webhook page, with the reason
    assert _row(network, msg) == before  # nothing changed
    rows, _ = network.tx(lambda tx: audit.page(tx, action="webhook.replayed", target=coffee), readonly=True)
    assert rows == []
