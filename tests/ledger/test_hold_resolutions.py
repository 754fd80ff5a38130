"""A unit's resolved holds are written set-based (shared/ledger/journal.py ``_resolve_holds``): each
hold gets its own status, captured points, resolving entry and time, and a hold no longer open is
never resolved again — the unit fails and writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.ledger.events import Event
from shared.ledger.journal import Journal
from shared.models import Hold
from tests.factories import make_member, make_partner, verify_ok


def _holds(network) -> dict:
    table = Hold.__table__
    return {row.id: row for row in network.tx(lambda tx: tx.session.execute(select(table)).all(), readonly=True)}


def test_a_batch_resolves_each_of_its_holds_as_its_event_says(network, clock):
    partner = make_partner(network, "Shop")
    members = [make_member(network, partner) for _ in range(3)]
    for member in members:
        network.earn(partner, member, f"e-{member}", points=100)
    placed = network.post(partner, [Event("hold", f"h{n}", members[n % 3], points=10 + n) for n in range(9)])
    clock.advance(minutes=1)
    events = [Event("capture", f"c{n}", hold_id=placed[n]["hold_id"], points=n or None) if n % 2 == 0
              else Event("void", f"v{n}", hold_id=placed[n]["hold_id"]) for n in range(9)]
    outcomes = network.post(partner, events)
    holds = _holds(network)
    for n, (event, outcome) in enumerate(zip(events, outcomes)):
        row = holds[event.hold_id]
        assert row.status == ("captured" if event.kind == "capture" else "voided")
        assert row.captured_points == (outcome["captured"] if event.kind == "capture" else 0) == (
            (n or 10) if event.kind == "capture" else 0)
        assert row.resolved_entry_id == outcome["entry_id"]
        assert row.resolved_at == clock.now()
    verify_ok(network)


def test_a_hold_no_longer_open_is_never_resolved_again(network, clock):
    partner = make_partner(network, "Shop")
    member = make_member(network, partner)
    network.earn(partner, member, "e", points=100)
    hold = network.hold(partner, member, "h", 10)
    still_open = network.hold(partner, member, "h2", 5)
    network.post(partner, [Event("void", "v", hold_id=hold["hold_id"])])
    before = _holds(network)

    def resolve_both_again(tx):
        journal = Journal(tx, clock.now().date())
        entries = {row.id: row.entry_id for row in before.values()}
        journal.hold_resolutions += [
            {"id": still_open["hold_id"], "status": "voided", "captured_points": 0,
             "resolved_entry_id": entries[still_open["hold_id"]]},
            {"id": hold["hold_id"], "status": "captured", "captured_points": 10,
             "resolved_entry_id": entries[hold["hold_id"]]}]
        journal.flush()

    with pytest.raises(AssertionError, match=f"hold {hold['hold_id']} resolved twice"):
        network.tx(resolve_both_again)
    assert _holds(network) == before  # the open one was not resolved either: the unit wrote nothing


def test_a_hold_resolved_twice_in_one_unit_fails_it(network, clock):
    """One statement per chunk would write the hold once and say nothing: the unit fails instead."""
    partner = make_partner(network, "Shop")
    member = make_member(network, partner)
    network.earn(partner, member, "e", points=100)
    hold = network.hold(partner, member, "h", 10)
    before = _holds(network)

    def resolve_twice(tx):
        journal = Journal(tx, clock.now().date())
        entry = before[hold["hold_id"]].entry_id
        journal.resolve_hold({"id": hold["hold_id"], "status": "voided", "captured_points": 0,
                              "resolved_entry_id": entry})
        journal.resolve_hold({"id": hold["hold_id"], "status": "captured", "captured_points": 10,
                              "resolved_entry_id": entry})
        journal.flush()

    with pytest.raises(AssertionError, match=f"hold {hold['hold_id']} resolved twice"):
        network.tx(resolve_twice)
    assert _holds(network) == before
