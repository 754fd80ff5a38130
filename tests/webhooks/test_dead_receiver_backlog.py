"""A dead receiver's backlog does not keep other partners' fresh deliveries waiting: deliveries not sent
because their URL timed out earlier in the run use up no try, but the endpoint is paused, longer at each
timeout, and none of its deliveries is claimed until the pause is over. (A change that put them back 30 s
later without a try and without a pause, reverted, made such a backlog come due every 30 s for ever,
filling the job's batches, ordered by next_attempt_at, ahead of every other partner's deliveries.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Settings
from shared.webhooks import delivery, emit
from shared.webhooks.delivery import Outcome, deliver_due
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import deliveries, register


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=Path(tmp_path) / "data", webhook_allow_private_targets=True)


def test_a_dead_receivers_backlog_does_not_keep_a_healthy_partners_new_delivery_waiting(network, receiver, monkeypatch):
    dead, live = make_partner(network, "Dead"), make_partner(network, "Live")
    register(network, receiver, dead)
    register(network, receiver, live)
    dead_url = receiver.url(f"/hooks/{dead}")

    def send(client, claimed, clock, key, *, allow_private=True):
        if claimed.url == dead_url:
            return Outcome(None, "timed out", 15000, timed_out=True)
        return Outcome(200, None, 1)

    monkeypatch.setattr(delivery, "send", send)
    member = make_member(network, dead)
    for n in range(30):
        network.tx(lambda tx: emit(tx, "points.expiring", {"member_id": member, "points": n + 1}))
    for _ in range(14):  # the job every minute, 10 deliveries a run (limit 5, 2 rounds)
        deliver_due(network, limit=5, rounds=2)
        network.clock.advance(minutes=1)
    network.earn(live, make_member(network, live), "l1", points=5)  # a healthy partner's new message
    deliver_due(network, limit=5, rounds=2)
    [fresh] = deliveries(network, partner_id=live)
    assert fresh.status == "delivered", (
        "still waiting behind the dead receiver's put-back backlog: "
        f"{sum(1 for row in deliveries(network, partner_id=dead) if row.attempts == 0)} dead deliveries never tried")
