"""Spends read a member's first lots, and the rest only when those fall short.

A member who has earned for years has hundreds of open lots; a burn used to read every one of
them. It now reads the earliest ``state.PAGE`` lots with free points and reads the rest only when
they are all due or do not cover what the unit spends, or when something else in the unit takes
their points first. Whatever it reads, a spend takes exactly the lots the design's order gives
over all of the member's lots: earliest expiry first, then oldest, then id.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from shared.config import Settings
from shared.errors import InsufficientPoints
from shared.ledger import state
from shared.ledger.events import Event
from shared.models import Entry, Lot
from shared.network import Network
from tests.factories import make_member, make_partner, verify_ok


def lots_in_order(network, member_id: str) -> list[tuple[str, int]]:
    """(lot id, remaining) of the member's lots in the design's consumption order."""
    return [(row.id, row.remaining) for row in network.tx(lambda tx: tx.session.execute(
        select(Lot.id, Lot.remaining).where(Lot.member_id == member_id)
        .order_by(Lot.expires_at, Lot.issued_at, Lot.id)).all(), readonly=True)]


def forty_lots(network, clock, partner: str, member: str) -> list[str]:
    """Forty lots of 10 points, in three batches at three instants; their ids in consumption order."""
    for batch in range(3):
        network.post(partner, [Event(kind="earn", reference=f"old-{batch}-{n}", member_id=member, points=10)
                               for n in range(batch * 14, min(40, batch * 14 + 14))])
        clock.advance(minutes=1)
    return [lot_id for lot_id, _ in lots_in_order(network, member)]


@pytest.fixture
def member(network):
    partner = make_partner(network, "Grocer")
    return partner, make_member(network, partner)


def test_a_burn_past_the_first_page_takes_the_earliest_lots(network, clock, member):
    partner, member_id = member
    order = forty_lots(network, clock, partner, member_id)
    result = network.burn(partner, member_id, "big", 355)  # 36 lots: more than the first page holds
    assert [(c["lot_id"], c["points"]) for c in result["consumed"]] == [(lot_id, 10) for lot_id in order[:35]] + [
        (order[35], 5)]
    assert result["balance"]["available"] == 45
    verify_ok(network)


def test_a_page_that_covers_the_spend_is_enough(network, clock, member):
    partner, member_id = member
    order = forty_lots(network, clock, partner, member_id)
    result = network.burn(partner, member_id, "small", 25)
    assert [(c["lot_id"], c["points"]) for c in result["consumed"]] == [(order[0], 10), (order[1], 10), (order[2], 5)]
    assert lots_in_order(network, member_id)[2:4] == [(order[2], 5), (order[3], 10)]


def test_a_lot_earned_in_the_unit_is_not_taken_before_older_lots_not_yet_read(network, clock, member):
    """The unit reads the first page for its burn of 320; reversing an earn first takes 10 of those
    points, so the burn needs an older lot beyond the page, not the lot earned in the same batch."""
    partner, member_id = member
    order = forty_lots(network, clock, partner, member_id)
    clock.advance(hours=1)
    outcomes = network.post(partner, [
        Event(kind="reversal", reference="undo", original_reference="old-0-0"),  # a lot of the page
        Event(kind="earn", reference="fresh", member_id=member_id, points=500),
        Event(kind="burn", reference="burn", member_id=member_id, points=320),
    ])
    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    fresh_lot = outcomes[1]["lots"][0]["lot_id"]
    consumed = [(c["lot_id"], c["points"]) for c in outcomes[2]["consumed"]]
    reversed_lot = network.tx(lambda tx: tx.session.execute(select(Lot.id).join(Entry, Entry.id == Lot.entry_id)
                                                            .where(Entry.reference == "old-0-0")).scalar_one())
    assert reversed_lot in order[:14]
    assert consumed == [(lot_id, 10) for lot_id in [lot_id for lot_id in order if lot_id != reversed_lot][:32]]
    assert fresh_lot not in {lot_id for lot_id, _ in consumed}
    assert outcomes[2]["balance"]["available"] == 400 - 10 + 500 - 320
    verify_ok(network)


def test_a_refused_burn_says_what_the_member_has(network, clock, member):
    partner, member_id = member
    forty_lots(network, clock, partner, member_id)
    with pytest.raises(InsufficientPoints) as refused:
        network.burn(partner, member_id, "too-much", 401)
    assert refused.value.extra["available"] == 400
    outcomes = network.post(partner, [Event(kind="burn", reference="a", member_id=member_id, points=300),
                                      Event(kind="burn", reference="b", member_id=member_id, points=101),
                                      Event(kind="burn", reference="c", member_id=member_id, points=100)])
    assert isinstance(outcomes[0], dict) and isinstance(outcomes[1], InsufficientPoints)
    assert outcomes[2]["balance"]["available"] == 0


def test_holds_then_a_burn_in_one_batch_take_the_lots_in_order(network, clock, member):
    partner, member_id = member
    order = forty_lots(network, clock, partner, member_id)
    outcomes = network.post(partner, [Event(kind="hold", reference="h", member_id=member_id, points=200),
                                      Event(kind="burn", reference="b", member_id=member_id, points=150)])
    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    assert [c["lot_id"] for c in outcomes[1]["consumed"]] == order[20:35]
    assert outcomes[1]["balance"] == {"available": 50, "held": 200}
    verify_ok(network)


@pytest.fixture
def expiring(database_url, clock, tmp_path):
    """A network whose lots expire after 30 days, a partner and a member with forty lots."""
    network = Network(Settings(data_dir=Path(tmp_path) / "data", expiry_policy="days:30"),
                      database_url=database_url, clock=clock)
    try:
        partner = make_partner(network, "Grocer")
        member_id = make_member(network, partner)
        forty_lots(network, clock, partner, member_id)
        yield network, partner, member_id
    finally:
        network.close()


def expiries(network, member_id: str) -> list[int]:
    return network.tx(lambda tx: tx.session.execute(
        select(Entry.points).where(Entry.member_id == member_id, Entry.kind == "expiry")).scalars().all(),
        readonly=True)


def test_every_due_lot_expires_in_one_entry_however_many(expiring, clock):
    """More due lots than a page: the spend's lazy expiry still takes all of them at once."""
    network, partner, member_id = expiring
    clock.advance(days=31)
    network.earn(partner, member_id, "fresh", points=100)
    result = network.burn(partner, member_id, "burn", 30)
    assert len(result["consumed"]) == 1 and result["balance"]["available"] == 70
    assert expiries(network, member_id) == [400]
    verify_ok(network)


def test_the_page_is_a_prefix_of_the_order_whatever_its_size(network, clock, member, monkeypatch):
    """With pages of one lot, every spend of more than one lot reads the rest."""
    monkeypatch.setattr(state, "PAGE", 1)
    partner, member_id = member
    order = forty_lots(network, clock, partner, member_id)
    first = network.burn(partner, member_id, "one", 10)
    second = network.burn(partner, member_id, "two", 15)
    assert [c["lot_id"] for c in first["consumed"]] == order[:1]
    assert [(c["lot_id"], c["points"]) for c in second["consumed"]] == [(order[1], 10), (order[2], 5)]


def test_a_capture_expires_every_due_lot_however_many(expiring, clock):
    """A capture spends nothing new, yet expires the member's due lots: all of them, in one entry."""
    network, partner, member_id = expiring
    clock.advance(days=30, minutes=-4)
    hold = network.hold(partner, member_id, "hold", 10)
    clock.advance(minutes=5)  # every lot is due now; the hold is still open
    result = network.capture(partner, hold["hold_id"], 10)
    assert result["balance"] == {"available": 0, "held": 0}
    assert expiries(network, member_id) == [390]
    verify_ok(network)
