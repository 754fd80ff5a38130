"""A termination against what runs beside it: a posting in flight, a reactivation.

Each test holds one unit of work at a chosen point while a second one runs (tests/interleave.py),
so the interleaving is the same every time.
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
from tests.interleave import FIRST, Pause, overlap


def open_points(network, partner) -> int:
    return network.tx(lambda tx: tx.session.execute(select(func.coalesce(func.sum(Lot.remaining), 0)).where(
        Lot.funder_partner_id == partner, Lot.remaining > 0)).scalar_one(), readonly=True)


def test_a_termination_counts_the_points_of_a_posting_in_flight(network, monkeypatch):
    """The posting read the partner active before the termination began: the termination waits for
    it, so the points it issues are among the outstanding points the termination records."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "before", points=100)
    pause = Pause().after(monkeypatch, posting_module, "enter_open_cycle")
    both = overlap(lambda: network.post(partner, [Event("earn", "in-flight", member, points=40)]),
                   lambda: network.tx(lambda tx: terminate(tx, partner)), pause)
    assert both.second_waited  # unguarded, it records 100 outstanding points and ends meanwhile
    [earned] = both.first
    assert earned["points"] == 40
    assert both.second["outstanding_points_at_termination"] == open_points(network, partner) == 140


def test_a_reactivation_racing_a_termination_leaves_the_partner_out(network, monkeypatch):
    """The termination holds the partner's row; a reactivation that began meanwhile sees the
    termination once it commits and is refused, instead of setting the partner active again."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_status(tx, partner, "suspended"))
    pause = Pause().after(monkeypatch, lifecycle, "_termination")
    both = overlap(lambda: network.tx(lambda tx: terminate(tx, partner)),
                   lambda: network.tx(lambda tx: set_status(tx, partner, "active")), pause)
    assert both.first["recorded"] and isinstance(both.second, PartnerTerminated)
    status = network.tx(lambda tx: tx.session.get(Partner, partner).status, readonly=True)
    assert status == "suspended"
    with pytest.raises(PartnerTerminated):
        network.earn(partner, member, "after", points=1)


def test_a_waiting_termination_goes_before_postings_that_arrive_after_it(network, monkeypatch):
    """A busy partner cannot keep its termination waiting: postings that arrive while it waits for
    the one in flight queue behind it, and then find the partner terminated."""
    partner = make_partner(network)
    member = make_member(network, partner)
    pause = Pause().after(monkeypatch, posting_module, "enter_open_cycle")
    outcomes = {}

    def run(name, unit):
        try:
            outcomes[name] = unit()
        except Exception as exc:  # asserted below
            outcomes[name] = exc

    def start(name, unit):
        thread = threading.Thread(target=run, args=(name, unit), name=name, daemon=True)
        thread.start()
        return thread

    in_flight = start(FIRST, lambda: network.earn(partner, member, "in-flight", points=10))
    assert pause.reached.wait(10)
    ending = start("terminate", lambda: network.tx(lambda tx: terminate(tx, partner)))
    ending.join(1.0)
    later = start("later", lambda: network.earn(partner, member, "later", points=10))
    later.join(1.0)
    queued = ending.is_alive() and later.is_alive()
    pause.released.set()
    for thread in (in_flight, ending, later):
        thread.join(10)
        assert not thread.is_alive()
    assert queued
    assert outcomes[FIRST]["points"] == 10 and outcomes["terminate"]["outstanding_points_at_termination"] == 10
    assert isinstance(outcomes["later"], PartnerTerminated)
