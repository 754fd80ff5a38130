"""The sign-in throttle's limits hold between attempts admitted at the same moment."""

from __future__ import annotations

from shared.access import throttle
from shared.access.errors import LoginThrottled
from tests.interleave import Pause, overlap


def test_one_clients_attempts_on_different_addresses_cannot_both_take_its_last_one(network, monkeypatch):
    """A client one attempt short of its limit tries two addresses at once: the first attempt is
    admitted and holds its transaction open; the second, admitted meanwhile, must see it and be
    refused (attempts of one address were already serialised; those of one client were not)."""
    client = "203.0.113.7"
    network.tx(lambda tx: [throttle.record_failure(tx, f"guess{n}@example.org", client)
                           for n in range(throttle.PER_CLIENT - 1)])
    pause = Pause().after(monkeypatch, throttle, "record_failure")
    both = overlap(lambda: network.tx(lambda tx: throttle.admit(tx, "a@example.org", client)),
                   lambda: network.tx(lambda tx: throttle.admit(tx, "b@example.org", client)), pause)
    assert both.first is None and isinstance(both.second, LoginThrottled)
