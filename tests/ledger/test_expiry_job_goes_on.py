"""The expiry jobs run until nothing is due, even when a batch's work was all done by someone else.

A batch reads the members owning the next due lots (or timed-out holds), then waits for their locks.
A spend by such a member that holds its lock meanwhile expires its due lots first (and releases its
lapsed holds), as every spend does: the batch then finds nothing left to do under the locks. That
batch must not end the job's run while later due lots or holds remain (they would wait a whole job
interval, or for ever with an unlucky spend at each run). On SQLite the batch reads only once it has
the one writer, so there is no race to make: the tests then just pass through.
"""

from __future__ import annotations

from sqlalchemy import select

from shared.ledger import posting
from shared.models import Entry, Hold, Lot
from tests.factories import make_member, make_partner, verify_ok
from tests.interleave import Pause, overlap


def _lot(network, lot_id: str) -> tuple[int, int]:
    return network.tx(lambda tx: tuple(tx.session.execute(select(Lot.remaining, Lot.reserved)
                                                          .where(Lot.id == lot_id)).one()), readonly=True)


def test_a_batch_whose_due_lots_a_spend_expired_does_not_end_the_lot_expiry_run(network, clock, monkeypatch):
    network.settings.expiry_batch_size = 2
    shop = make_partner(network, "Till")
    spender, other = make_member(network, shop), make_member(network, shop)
    network.settings.expiry_policy = "days:10"
    # the spender's two lots are the first due: the job's first batch is the spender alone
    spent = [network.earn(shop, spender, f"s-old-{n}", points=10)["lots"][0]["lot_id"] for n in range(2)]
    clock.advance(hours=1)
    later = network.earn(shop, other, "o-old", points=7)["lots"][0]["lot_id"]  # due too, in a later batch
    network.settings.expiry_policy = "days:30"
    network.earn(shop, spender, "s-new", points=50)
    clock.advance(days=11)

    pause = Pause().after(monkeypatch, posting, "lock_members_following_merges")
    both = overlap(lambda: network.burn(shop, spender, "s-burn", 5), network.expire_lots, pause)
    assert isinstance(both.first, dict), both.first
    assert not isinstance(both.second, Exception), both.second
    assert both.second == 7, "the run ended at the batch the burn had emptied"
    assert _lot(network, later) == (0, 0)
    assert all(_lot(network, lot_id) == (0, 0) for lot_id in spent)
    assert network.balance(other)["available"] == 0 and network.balance(spender)["available"] == 45
    assert network.expire_lots() == 0
    expiries = network.tx(lambda tx: sorted((e.member_id, e.points) for e in tx.session.execute(
        select(Entry).where(Entry.kind == "expiry")).scalars()), readonly=True)
    assert expiries == sorted([(spender, 20), (other, 7)])
    verify_ok(network)


def test_a_batch_whose_holds_a_spend_released_does_not_end_the_hold_timeout_run(network, clock, monkeypatch):
    network.settings.expiry_batch_size = 1
    shop = make_partner(network, "Till")
    spender, other = make_member(network, shop), make_member(network, shop)
    network.earn(shop, spender, "s-earn", points=100)
    network.earn(shop, other, "o-earn", points=100)
    first = network.hold(shop, spender, "s-hold", 30)["hold_id"]  # times out first: the first batch
    clock.advance(seconds=5)
    second = network.hold(shop, other, "o-hold", 20)["hold_id"]
    clock.advance(days=30)  # both timed out

    pause = Pause().after(monkeypatch, posting, "lock_members_following_merges")
    # 80 of the 70 available: the burn releases the lapsed hold to find them
    both = overlap(lambda: network.burn(shop, spender, "s-burn", 80), network.expire_holds, pause)
    assert isinstance(both.first, dict), both.first
    assert not isinstance(both.second, Exception), both.second
    statuses = network.tx(lambda tx: dict(tx.session.execute(
        select(Hold.id, Hold.status).where(Hold.id.in_([first, second]))).all()), readonly=True)
    assert statuses[second] != "open", "the run ended at the batch the burn had emptied"
    assert statuses[first] != "open"
    assert both.second == 1, "the run ended at the batch the burn had emptied"
    assert network.balance(other)["held"] == 0 and network.balance(other)["available"] == 100
    assert network.balance(spender)["held"] == 0 and network.balance(spender)["available"] == 20
    assert network.expire_holds() == 0
    verify_ok(network)


def test_a_batch_reading_again_what_it_could_not_do_ends_the_run(network):
    """Never a loop: due work that no batch can do and no other unit takes ends the run at the second try."""
    from shared.jobs.batches import Batch

    outcomes = iter([Batch(3, frozenset({"a"})), Batch(0, frozenset({"b"})), Batch(2, frozenset({"c"})),
                     Batch(0, frozenset({"d"})), Batch(0, frozenset({"d"})), Batch(9, frozenset({"e"}))])
    calls: list[int] = []
    assert network.until_done(lambda tx: next(outcomes), on_batch=calls.append) == 5
    assert calls == [3, 2]
    assert next(outcomes) == Batch(9, frozenset({"e"}))  # not read: the run had ended
    assert network.until_done(lambda tx: Batch(0)) == 0
    assert network.until_done(lambda tx: 0) == 0
