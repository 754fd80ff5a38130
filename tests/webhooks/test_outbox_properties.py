"""Property: the outbox holds exactly one event per reportable ledger entry, for exactly the right partner."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from shared.ledger.events import Event
from shared.models import Entry, WebhookDelivery
from shared.webhooks.endpoints import set_endpoint
from tests.factories import make_member, make_partner

REPORTED = {"earn": "points.earned", "burn": "points.redeemed", "reversal": "points.reversed"}

operations = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["earn", "burn", "reversal"]),
                                st.integers(1, 300), st.integers(0, 20)), min_size=1, max_size=12)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, batch=st.booleans())
def test_one_event_per_entry_to_its_partner_only(network, ops, batch):
    partners = [make_partner(network) for _ in range(3)]
    for partner in partners[:2]:  # the third has no endpoint
        network.tx(lambda tx: set_endpoint(tx, partner, f"https://hooks.example.com/{partner}"))
    member = make_member(network, partners[0], also_linked_to=tuple(partners[1:]))
    stranger = make_member(network, partners[2])
    references: dict[str, list[str]] = {p: [] for p in partners}
    pending: dict[str, list[Event]] = {p: [] for p in partners}
    for n, (who, kind, points, pick) in enumerate(ops):
        partner = partners[who]
        reference = f"r{n}"
        if kind == "reversal":
            if not references[partner]:
                continue
            original = references[partner][pick % len(references[partner])]
            event = Event("reversal", reference, points=points, original_reference=original)
        else:
            event = Event(kind, reference, stranger if who == 2 and pick % 2 else member, points)
        references[partner].append(reference)
        if batch:
            pending[partner].append(event)
        else:
            network.post(partner, [event])
    for partner, events in pending.items():
        if events:
            network.post(partner, events)

    def read(tx):
        entries = tx.session.execute(select(Entry.id, Entry.kind, Entry.partner_id).where(
            Entry.partner_id.in_(partners))).all()
        rows = tx.session.execute(select(WebhookDelivery).where(
            WebhookDelivery.partner_id.in_(partners))).scalars().all()
        return entries, rows
    entries, rows = network.tx(read, readonly=True)
    expected = sorted((e.partner_id, e.id, REPORTED[e.kind]) for e in entries
                      if e.kind in REPORTED and e.partner_id in partners[:2])
    # member events (tier.changed when the member crosses a tier) carry no transaction: not entry events
    entry_rows = [r for r in rows if r.event_type in set(REPORTED.values())]
    sent = sorted((r.partner_id, json.loads(r.body)["data"]["transaction_id"], r.event_type) for r in entry_rows)
    assert sent == expected
    for row in rows:
        # the stranger is linked only to the partner without an endpoint: never reported to anyone
        assert json.loads(row.body)["data"]["member_id"] == member
