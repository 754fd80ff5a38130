"""A termination against what runs beside it: a posting in flight, a reactivation.

Each test holds one unit of work at a chosen point (a patched function waits for the test) while a
second one runs, so the interleaving is the same every time. On PostgreSQL the units overlap and
row locks decide; on SQLite the second waits for the one writer, and the tests hold too.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from shared.ledger import posting as posting_module
from shared.ledger.events import Event
from shared.models import Lot, Partner
from shared.partners import lifecycle
from shared.partners.lifecycle import PartnerTerminated, set_status, terminate
from tests.factories import make_member, make_partner


class Held:
    """Makes ``module.name`` wait, in the thread named ``thread``, until released."""

    def __init__(self, monkeypatch, module, name: str, thread: str):
        self.reached, self.release = threading.Event(), threading.Event()
        original = getattr(module, name)

        def held(*args, **kwargs):
            result = original(*args, **kwargs)
            if threading.current_thread().name == thread:
                self.reached.set()
                self.release.wait(10)
            return result

        monkeypatch.setattr(module, name, held)


def run(name: str, fn, outcomes: dict) -> threading.Thread:
    def target():
        try:
            outcomes[name] = fn()
        except Exception as exc:  # the test looks at it
            outcomes[name] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def open_points(network, partner) -> int:
    return network.tx(lambda tx: tx.session.execute(select(func.coalesce(func.sum(Lot.remaining), 0)).where(
        Lot.funder_partner_id == partner, Lot.remaining > 0)).scalar_one(), readonly=True)


def test_a_termination_counts_the_points_of_a_posting_in_flight(network, monkeypatch):
    """The posting read the partner active before the termination began: the termination waits for
    it, so the points it issues are among the outstanding points the termination records."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "before", points=100)
    held = Held(monkeypatch, posting_module, "enter_open_cycle", thread="posting")
    outcomes: dict = {}
    posting = run("posting", lambda: network.post(partner, [Event("earn", "in-flight", member, points=40)]), outcomes)
    assert held.reached.wait(10)
    ending = run("terminate", lambda: network.tx(lambda tx: terminate(tx, partner)), outcomes)
    ending.join(1.0)
    waited = ending.is_alive()  # unguarded, it records 100 outstanding points and ends meanwhile
    held.release.set()
    posting.join(10)
    ending.join(10)
    assert waited and not posting.is_alive() and not ending.is_alive()
    [earned] = outcomes["posting"]
    assert earned["points"] == 40
    assert outcomes["terminate"]["outstanding_points_at_termination"] == open_points(network, partner) == 140


def test_a_reactivation_racing_a_termination_leaves_the_partner_out(network, monkeypatch):
    """The termination holds the partner's row; a reactivation that began meanwhile sees the
    termination once it commits and is refused, instead of setting the partner active again."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_status(tx, partner, "suspended"))
    held = Held(monkeypatch, lifecycle, "_termination", thread="terminate")
    outcomes: dict = {}
    ending = run("terminate", lambda: network.tx(lambda tx: terminate(tx, partner)), outcomes)
    assert held.reached.wait(10)
    reactivating = run("reactivate", lambda: network.tx(lambda tx: set_status(tx, partner, "active")), outcomes)
    reactivating.join(1.0)
    held.release.set()
    ending.join(10)
    reactivating.join(10)
    assert not ending.is_alive() and not reactivating.is_alive()
    assert outcomes["terminate"]["recorded"]
    assert isinstance(outcomes["reactivate"], PartnerTerminated)
    status = network.tx(lambda tx: tx.session.get(Partner, partner).status, readonly=True)
    assert status == "suspended"
    with pytest.raises(PartnerTerminated):
        network.earn(partner, member, "after", points=1)
