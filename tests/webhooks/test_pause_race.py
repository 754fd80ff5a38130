"""Two workers recording timeouts of one endpoint at once pause it once: the second finds the first's
pause running, so the next pause is twice as long as this one, as documented, not four times (found in
review of fabfac9). On SQLite the one writer already runs them one after the other."""

from __future__ import annotations

from sqlalchemy import select

from shared.models import WebhookEndpoint
from shared.webhooks import delivery
from shared.webhooks.endpoints import set_endpoint
from tests.factories import make_partner
from tests.interleave import Pause, overlap


def test_two_timeouts_recorded_at_once_pause_the_endpoint_once(network, monkeypatch):
    partner = make_partner(network)
    endpoint = network.tx(lambda tx: set_endpoint(tx, partner, "http://127.0.0.1:9/hooks"))["endpoint_id"]
    pause = Pause().after(monkeypatch, delivery, "pause_after")  # the first has read the endpoint's pauses

    result = overlap(lambda: network.tx(lambda tx: delivery._pause(tx, endpoint)),
                     lambda: network.tx(lambda tx: delivery._pause(tx, endpoint)), pause)

    assert result.first == result.second  # one pause, both told when it ends
    pauses = network.tx(lambda tx: tx.session.execute(
        select(WebhookEndpoint.pauses).where(WebhookEndpoint.id == endpoint)).scalar_one())
    assert pauses == 1
