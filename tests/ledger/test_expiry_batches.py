"""The expiry job in batches: many members, many due lots each, prepaid and postpaid, some points held.

Whatever the batch size, every member gets one ``expiry`` entry per run for all its due lots, taken
in consumption order, with the breakage money of prepaid lots; held points and lots not yet due stay.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from shared.models import Entry, Lot, LotConsumption, ObligationLine
from tests.factories import make_member, make_partner, verify_ok

MICRO = 1_000_000


@pytest.mark.parametrize("batch_size", [1, 4, 5000])
def test_every_due_lot_expires_once_with_its_breakage(network, clock, batch_size):
    network.settings.expiry_batch_size = batch_size
    pre = make_partner(network, "Pre", billing="prepaid", point_value="1", breakage_share="0.25")
    post = make_partner(network, "Post", billing="postpaid", point_value="1")
    members = [make_member(network, pre, also_linked_to=(post,)) for _ in range(5)]
    network.settings.expiry_policy = "days:10"
    due: dict[str, list[tuple[str, int]]] = {m: [] for m in members}  # member -> (lot, free points) due
    for n, member in enumerate(members):
        for k in range(n + 1):  # member n has n + 1 lots of each funder, of different sizes
            for partner, tag in ((pre, "p"), (post, "q")):
                earned = network.earn(partner, member, f"{tag}{n}-{k}", points=10 * (k + 1) + n)
                due[member].append((earned["lots"][0]["lot_id"], 10 * (k + 1) + n))
                clock.advance(seconds=1)  # a distinct expiry per lot: the order never rests on random ids
    # member 0 holds 5 points of its first lot: they must not expire
    held = network.hold(pre, members[0], "h0", 5)
    first_lot, first_points = due[members[0]][0]
    due[members[0]][0] = (first_lot, first_points - 5)
    network.settings.expiry_policy = "days:30"
    later = network.earn(post, members[1], "later", points=99)["lots"][0]["lot_id"]  # not due yet

    clock.advance(days=11)
    total = sum(points for lots in due.values() for _, points in lots)
    assert network.expire_lots() == total
    assert network.expire_lots() == 0

    def read(tx):
        entries = tx.session.execute(select(Entry).where(Entry.kind == "expiry")).scalars().all()
        moves = {e.id: tx.session.execute(select(LotConsumption.lot_id, LotConsumption.points)
                                          .where(LotConsumption.entry_id == e.id)
                                          .order_by(LotConsumption.seq)).all() for e in entries}
        lines = tx.session.execute(select(ObligationLine.payer, ObligationLine.payee, ObligationLine.kind,
                                          ObligationLine.points, ObligationLine.amount_micro, ObligationLine.lot_id)
                                   .where(ObligationLine.kind == "breakage_refund")).all()
        lots = {lot.id: (lot.remaining, lot.reserved) for lot in tx.session.execute(select(Lot)).scalars()}
        return [(e.id, e.member_id, e.points, json.loads(e.result)) for e in entries], moves, lines, lots
    entries, moves, lines, lots = network.tx(read, readonly=True)

    assert sorted(member for _, member, _, _ in entries) == sorted(members)  # one entry per member
    for entry_id, member, points, result in entries:
        expected = [(lot_id, free) for lot_id, free in due[member]]  # earned in expiry order
        assert [tuple(m) for m in moves[entry_id]] == expected
        assert points == sum(free for _, free in expected) == result["points"]
        assert result["lots"] == [lot_id for lot_id, _ in expected]
        assert result["balance"]["held"] == (5 if member == members[0] else 0)
    prepaid = {lot_id: free for member in members for lot_id, free in due[member][0::2]}
    assert sorted((lot, points, amount) for _, _, _, points, amount, lot in lines) == sorted(
        (lot_id, free, free * MICRO * 3 // 4) for lot_id, free in prepaid.items())
    assert {(payer, payee) for payer, payee, *_ in lines} == {("network", pre)}
    assert lots[first_lot] == (5, 5) and lots[later] == (99, 0)
    assert all(lots[lot_id] == (0, 0) for m in members for lot_id, _ in due[m] if lot_id != first_lot)
    assert network.balance(members[0])["available"] == 0 and network.balance(members[0])["held"] == 5
    assert held["points"] == 5
    verify_ok(network)
