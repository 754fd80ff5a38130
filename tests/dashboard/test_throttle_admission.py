"""The sign-in throttle's limits hold between attempts admitted at the same moment."""

from __future__ import annotations

import threading

from shared.access import throttle
from shared.access.errors import LoginThrottled


def test_one_clients_attempts_on_different_addresses_cannot_both_take_its_last_one(network, monkeypatch):
    """A client one attempt short of its limit tries two addresses at once: the first attempt is
    admitted and holds its transaction open; the second, admitted meanwhile, must see it and be
    refused (attempts of one address were already serialised; those of one client were not)."""
    client = "203.0.113.7"
    network.tx(lambda tx: [throttle.record_failure(tx, f"guess{n}@example.org", client)
                           for n in range(throttle.PER_CLIENT - 1)])
    admitted, release = threading.Event(), threading.Event()
    record_failure = throttle.record_failure

    def first_holds(tx, email, who):
        record_failure(tx, email, who)
        if threading.current_thread().name == "first":
            admitted.set()
            release.wait(10)

    monkeypatch.setattr(throttle, "record_failure", first_holds)
    outcomes = {}

    def attempt(name, email):
        try:
            outcomes[name] = network.tx(lambda tx: throttle.admit(tx, email, client))
        except LoginThrottled as refused:
            outcomes[name] = refused

    first = threading.Thread(target=attempt, args=("first", "a@example.org"), name="first", daemon=True)
    first.start()
    assert admitted.wait(10)
    second = threading.Thread(target=attempt, args=("second", "b@example.org"), name="second", daemon=True)
    second.start()
    second.join(1.0)
    release.set()
    first.join(10)
    second.join(10)
    assert not first.is_alive() and not second.is_alive()
    assert outcomes["first"] is None and isinstance(outcomes["second"], LoginThrottled)
