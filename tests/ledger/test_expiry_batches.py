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
        # the balance as a spend would find it (what points.expired carries): member 0's hold timed out
        # long ago, so its 5 points count as released, and as they lie in a lot past its expiry, expired
        assert result["balance"] == {"available": 99 if member == members[1] else 0, "held": 0}
    prepaid = {lot_id: free for member in members for lot_id, free in due[member][0::2]}
    assert sorted((lot, points, amount) for _, _, _, points, amount, lot in lines) == sorted(
        (lot_id, free, free * MICRO * 3 // 4) for lot_id, free in prepaid.items())
    assert {(payer, payee) for payer, payee, *_ in lines} == {("network", pre)}
    assert lots[first_lot] == (5, 5) and lots[later] == (99, 0)
    assert all(lots[lot_id] == (0, 0) for m in members for lot_id, _ in due[m] if lot_id != first_lot)
    assert network.balance(members[0])["available"] == 0 and network.balance(members[0])["held"] == 5
    assert held["points"] == 5
    verify_ok(network)


# -- the expiry job meeting a merge of a due lot's member ------------------------------------------------

def _lots_of(network, member_id: str) -> dict[str, tuple[int, int]]:
    return network.tx(lambda tx: {lot.id: (lot.remaining, lot.reserved) for lot in tx.session.execute(
        select(Lot).where(Lot.member_id == member_id)).scalars()}, readonly=True)


@pytest.mark.parametrize("in_sql", [None, False], ids=["default path", "generic path"])
@pytest.mark.parametrize("survivor_sorts", ["first", "last"])
@pytest.mark.parametrize("company", ["alone", "beside another member's due lot"])
def test_the_job_expires_due_lots_of_a_member_merged_while_it_waited(network, clock, monkeypatch, survivor_sorts,
                                                                      company, in_sql):
    """A batch of the job reads the members owning due lots, then waits for their locks. A merge holding
    the duplicate's lock meanwhile moves its lots to the survivor and marks it merged (never locked
    again): the batch follows the lots to the survivor and expires them, instead of leaving them
    unexpired for a whole job interval (a batch that expired nothing ended the job's run). Another
    member's due lot in the batch expires beside them, whether the survivor's id sorts before the
    members the batch locked first or after them; the survivor's own lot not yet due stays."""
    from shared import errors
    from shared.ledger.expiry import expire_batch
    from shared.programme import merge as merging
    from shared.programme.merge import merge_members
    from tests.interleave import Pause, overlap

    shop = make_partner(network, "Till")
    members = sorted(make_member(network, shop) for _ in range(3))
    survivor, duplicate, other = members if survivor_sorts == "first" else members[::-1]
    network.settings.expiry_policy = "days:10"
    due = [network.earn(shop, duplicate, f"d-earn-{n}", points=100 * (n + 1))["lots"][0]["lot_id"] for n in range(2)]
    expected = 300
    if company != "alone":
        due.append(network.earn(shop, other, "o-earn", points=50)["lots"][0]["lot_id"])
        expected += 50
    network.settings.expiry_policy = "days:30"
    fresh = network.earn(shop, survivor, "s-earn", points=40)["lots"][0]["lot_id"]  # not due yet
    clock.advance(days=11)
    pause = Pause().after(monkeypatch, merging, "lock_members")
    batch = network.settings.expiry_batch_size
    both = overlap(lambda: network.tx(lambda tx: merge_members(tx, survivor, duplicate)),
                   lambda: network.tx(lambda tx: expire_batch(tx, batch, in_sql=in_sql)), pause)
    assert isinstance(both.first, dict), both.first
    assert both.first["lots"] == 2
    assert both.second_waited, "the job did not wait for the merge: no race was made"
    assert both.second == expected, both.second  # expired by this batch, not left to the next run
    assert _lots_of(network, survivor) == {due[0]: (0, 0), due[1]: (0, 0), fresh: (40, 0)}
    assert {m: network.balance(m)["available"] for m in members} == {survivor: 40, duplicate: 0, other: 0}
    with pytest.raises(errors.InsufficientPoints):
        network.burn(shop, survivor, "s-burn-all", 340)  # expired points are never spent
    assert network.expire_lots() == 0
    expiries = network.tx(lambda tx: sorted((e.member_id, e.points) for e in tx.session.execute(
        select(Entry).where(Entry.kind == "expiry")).scalars()), readonly=True)
    assert expiries == sorted([(survivor, 300)] + ([(other, 50)] if company != "alone" else []))
    verify_ok(network)


def test_a_burn_on_the_survivor_never_spends_a_merged_duplicates_due_lots(network, clock):
    """Between a merge and the job's next run the survivor holds the duplicate's lots past their
    expiry: a burn expires them first (as any spend does) and takes only the points not yet due."""
    from shared import errors
    from shared.ledger.queries import member_balance
    from shared.programme.merge import merge_members

    shop = make_partner(network, "Till")
    survivor, duplicate = make_member(network, shop), make_member(network, shop)
    network.settings.expiry_policy = "days:10"
    old = network.earn(shop, duplicate, "d-earn", points=300)["lots"][0]["lot_id"]
    network.settings.expiry_policy = "days:30"
    fresh = network.earn(shop, survivor, "s-earn", points=40)["lots"][0]["lot_id"]
    clock.advance(days=11)
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    stored = network.balance(survivor)["available"]
    assert stored == 340  # as the job has not written yet, but what a spend would find leaves the due points out:
    assert network.tx(lambda tx: member_balance(tx, survivor, apply_due=True), readonly=True)["available"] == 40
    with pytest.raises(errors.InsufficientPoints) as refused:
        network.burn(shop, survivor, "s-burn-all", 41)
    assert refused.value.extra["available"] == 40
    burned = network.burn(shop, survivor, "s-burn", 40)
    assert burned["consumed"] == [{"lot_id": fresh, "points": 40}]
    assert burned["balance"] == {"available": 0, "held": 0}
    assert _lots_of(network, survivor) == {old: (0, 0), fresh: (0, 0)}
    assert network.expire_lots() == 0  # the burn expired them first
    verify_ok(network)
