"""A hold's points are the member's again once it has timed out, before the hold-timeout job reaches it.

Until 2026-12-04 a burn or hold that needed them answered insufficient_points until the job ran (every
few seconds, or later if the worker was down), and that refusal was kept for the request's
Idempotency-Key, so the till's retry kept getting it (found reviewing the partner API). A spend that
falls short now releases the member's timed-out holds first, as the job would: a hold_expiry entry
each, for the hold's partner; the job then finds nothing left to release.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import select

from shared import errors
from shared.ledger.adjustments import adjust_member
from shared.ledger.events import Event
from shared.models import Entry, Hold
from tests.factories import make_member, make_partner, verify_ok


def _kinds(network, hold_id: str) -> list[tuple[str, str]]:
    return sorted(network.tx(lambda tx: tx.session.execute(select(Entry.kind, Entry.partner_id).where(
        Entry.hold_id == hold_id)).all(), readonly=True))


def _status(network, hold_id: str) -> str:
    return network.tx(lambda tx: tx.session.get(Hold, hold_id).status, readonly=True)


@pytest.fixture
def shops(network):
    a, b = make_partner(network, "Till A"), make_partner(network, "Till B")
    member = make_member(network, a, also_linked_to=(b,))
    network.earn(a, member, "e-1", points=100)
    return a, b, member


def test_a_burn_after_the_timeout_spends_the_held_points_before_the_job_runs(network, clock, shops):
    a, b, member = shops
    hold = network.hold(a, member, "h-1", 100)
    with pytest.raises(errors.InsufficientPoints):
        network.burn(b, member, "b-early", 100)  # still held
    clock.advance(minutes=15, seconds=1)
    burned = network.burn(b, member, "b-1", 100)
    assert burned["balance"] == {"available": 0, "held": 0}
    assert _status(network, hold["hold_id"]) == "expired"
    assert _kinds(network, hold["hold_id"]) == [("hold", a), ("hold_expiry", a)]  # released for its partner
    assert network.expire_holds() == 0  # nothing left for the job
    with pytest.raises(errors.HoldNotOpen):
        network.capture(a, hold["hold_id"])
    verify_ok(network)


def test_a_new_hold_after_the_timeout_reserves_the_released_points(network, clock, shops):
    a, b, member = shops
    first = network.hold(a, member, "h-1", 60)
    clock.advance(minutes=16)
    second = network.hold(b, member, "h-2", 100)
    assert second["balance"] == {"available": 0, "held": 100}
    assert _status(network, first["hold_id"]) == "expired"
    verify_ok(network)


def test_a_spend_that_fits_beside_the_hold_leaves_it_to_the_job(network, clock, shops):
    a, b, member = shops
    hold = network.hold(a, member, "h-1", 60)
    clock.advance(minutes=16)
    network.burn(b, member, "b-1", 40)  # the 40 not held are enough: nothing else is read or released
    assert _status(network, hold["hold_id"]) == "open"
    assert network.expire_holds() == 1
    balance = network.balance(member)
    assert (balance["available"], balance["held"]) == (60, 0)
    verify_ok(network)


def test_in_one_batch_a_capture_after_the_release_finds_the_hold_timed_out(network, clock, shops):
    a, b, member = shops
    hold = network.hold(a, member, "h-1", 100)
    clock.advance(minutes=16)
    burned, captured = network.post(a, [Event("burn", "b-1", member, 100), Event("capture", "c-1", hold_id=hold["hold_id"])])
    assert burned["balance"] == {"available": 0, "held": 0}
    assert isinstance(captured, errors.HoldNotOpen)
    verify_ok(network)


def test_two_short_spends_in_one_batch_release_a_timed_out_hold_once(network, clock, shops):
    a, b, member = shops
    lapsed = network.hold(a, member, "h-1", 60)
    clock.advance(minutes=10)
    network.hold(a, member, "h-2", 20)  # still open when the batch runs
    clock.advance(minutes=6)
    # both fall short with the member's points still held by h-2; the first releases h-1 and is refused
    # all the same (the release stays, as a lazy expiry does); the second must not release h-1 again
    first, second = network.post(b, [Event("burn", "b-1", member, 150), Event("burn", "b-2", member, 90)])
    assert isinstance(first, errors.InsufficientPoints) and isinstance(second, errors.InsufficientPoints)
    assert _kinds(network, lapsed["hold_id"]) == [("hold", a), ("hold_expiry", a)]
    balance = network.balance(member)
    assert (balance["available"], balance["held"]) == (80, 20)
    verify_ok(network)


def test_an_earn_reversal_takes_points_whose_hold_timed_out(network, clock, shops):
    """The earn's partner reversing the earn whose points a timed-out hold (not yet reached by the job)
    reserves: it was points_already_spent (only the lot's free points counted) while a burn at the same
    instant took them. Falling short while the member has points held, it releases the member's
    timed-out holds first (a hold_expiry entry for the hold's partner) and takes the points; a hold
    still open keeps them from it."""
    a, b, member = shops
    hold = network.hold(b, member, "h-1", 100)
    [early] = network.post(a, [Event("reversal", "r-early", original_reference="e-1")])
    assert isinstance(early, errors.PointsAlreadySpent) and early.to_problem()["remaining"] == 0  # still held
    clock.advance(minutes=15, seconds=1)
    [reversed_] = network.post(a, [Event("reversal", "r-1", original_reference="e-1")])
    assert not isinstance(reversed_, errors.PointsnetError), f"refused: {reversed_.code} {reversed_}"
    assert (reversed_["points"], reversed_["reversible_remaining"]) == (100, 0)
    assert reversed_["balance"] == {"available": 0, "held": 0}
    assert _status(network, hold["hold_id"]) == "expired"
    assert _kinds(network, hold["hold_id"]) == [("hold", b), ("hold_expiry", b)]  # released for its partner
    assert network.expire_holds() == 0  # nothing left for the job
    verify_ok(network)


def test_in_one_batch_two_short_earn_reversals_release_a_timed_out_hold_once(network, clock, shops):
    """A reversal of 90 points of the earn falls short (20 free) while the member holds 80 (h-1's 60
    timed out, h-2's 20 still open): it releases h-1 and is refused all the same, with the 80 then
    remaining (the release stays, as for a short burn); a second such reversal in the batch must not
    release h-1 again; a reversal of those 80 is posted."""
    a, b, member = shops
    lapsed = network.hold(b, member, "h-1", 60)
    clock.advance(minutes=10)
    network.hold(b, member, "h-2", 20)
    clock.advance(minutes=6)
    first, second, third = network.post(a, [Event("reversal", "r-1", original_reference="e-1", points=90),
                                            Event("reversal", "r-2", original_reference="e-1", points=90),
                                            Event("reversal", "r-3", original_reference="e-1", points=80)])
    assert isinstance(first, errors.PointsAlreadySpent) and first.to_problem()["remaining"] == 80
    assert isinstance(second, errors.PointsAlreadySpent) and second.to_problem()["remaining"] == 80
    assert third["points"] == 80 and third["balance"] == {"available": 0, "held": 20}
    assert _kinds(network, lapsed["hold_id"]) == [("hold", b), ("hold_expiry", b)]
    verify_ok(network)


def test_a_debit_adjustment_takes_points_whose_hold_timed_out(network, clock, shops):
    """An operator's debit adjustment falling short while the member has points held releases the
    member's timed-out holds first, as a burn at the same instant does (a hold_expiry entry for the
    hold's partner), and takes the points; it was insufficient_points until the job ran."""
    a, b, member = shops
    hold = network.hold(a, member, "h-1", 100)
    with pytest.raises(errors.InsufficientPoints):  # still held: not the member's to take
        network.tx(lambda tx: adjust_member(tx, member, -100, reason="fraud clawback"))
    clock.advance(minutes=15, seconds=1)
    taken = network.tx(lambda tx: adjust_member(tx, member, -100, reason="fraud clawback"))
    assert (taken["points"], taken["balance"]) == (-100, {"available": 0, "held": 0})
    assert _status(network, hold["hold_id"]) == "expired"
    assert _kinds(network, hold["hold_id"]) == [("hold", a), ("hold_expiry", a)]
    assert network.expire_holds() == 0  # nothing left for the job
    verify_ok(network)


def test_a_debit_adjustment_that_fits_beside_the_hold_leaves_it_to_the_job(network, clock, shops):
    a, b, member = shops
    hold = network.hold(a, member, "h-1", 60)
    clock.advance(minutes=16)
    network.tx(lambda tx: adjust_member(tx, member, -40, reason="correction"))
    assert _status(network, hold["hold_id"]) == "open"
    assert network.expire_holds() == 1
    balance = network.balance(member)
    assert (balance["available"], balance["held"]) == (60, 0)
    verify_ok(network)


# -- the hold-timeout job meeting a merge of the hold's member ------------------------------------------

@pytest.mark.parametrize("survivor_sorts", ["first", "last"])
@pytest.mark.parametrize("company", ["alone", "beside another member's hold"])
def test_the_job_releases_timed_out_holds_of_a_member_merged_while_it_waited(network, clock, monkeypatch,
                                                                           survivor_sorts, company):
    """A batch of the job reads the timed-out holds, then waits for their members' locks. A merge
    holding the duplicate's lock meanwhile moves its holds to the survivor and marks it merged (never
    locked again): the batch follows the hold to the survivor and releases it, instead of leaving it
    open for a whole job interval (a batch that released nothing ended the job's run). Another
    member's hold in the batch is released beside it, whether the survivor's id sorts before the
    members the batch locked first or after them."""
    from shared.ledger.holds import expire_holds
    from shared.programme import merge as merging
    from shared.programme.merge import merge_members
    from tests.interleave import Pause, overlap

    shop = make_partner(network, "Till")
    members = sorted(make_member(network, shop) for _ in range(3))
    survivor, duplicate, other = members if survivor_sorts == "first" else members[::-1]
    network.earn(shop, duplicate, "d-earn", points=300)
    network.earn(shop, other, "o-earn", points=50)
    holds = [network.hold(shop, duplicate, "d-hold", 100)["hold_id"]]
    if company != "alone":
        holds.append(network.hold(shop, other, "o-hold", 20)["hold_id"])
    clock.advance(minutes=network.settings.hold_timeout_minutes + 1)
    pause = Pause().after(monkeypatch, merging, "lock_members")
    batch = network.settings.expiry_batch_size
    both = overlap(lambda: network.tx(lambda tx: merge_members(tx, survivor, duplicate)),
                   lambda: network.tx(lambda tx: expire_holds(tx, batch)), pause)
    assert isinstance(both.first, dict), both.first
    assert both.second_waited, "the job did not wait for the merge: no race was made"
    assert both.second == len(holds), both.second  # released by this batch, not left to the next run
    assert [_status(network, hold) for hold in holds] == ["expired"] * len(holds)
    assert network.tx(lambda tx: tx.session.get(Hold, holds[0]).member_id, readonly=True) == survivor
    assert {m: (network.balance(m)["available"], network.balance(m)["held"]) for m in members} == {
        survivor: (300, 0), duplicate: (0, 0), other: (50, 0)}
    assert network.expire_holds() == 0
    verify_ok(network)


@pytest.mark.parametrize("releaser", ["job", "batch"])
def test_the_expiry_of_held_points_past_their_date_answers_the_balance_once(network, clock, releaser):
    """A timed-out hold whose points were reserved before their lot's date, the lot since given a
    reversal's grace: releasing the hold expires those points at once (decision 13), in an ``expiry``
    entry whose balance counted the hold as released twice (held -90) until 2026-12-07."""
    partner = make_partner(network, "Till")
    member = make_member(network, partner)
    network.earn(partner, member, "e-1", points=100)
    network.burn(partner, member, "b-1", 10)
    lot_expires = network.balance(member)["lots"][0]["expires_at"]
    clock.advance(seconds=(datetime.fromisoformat(lot_expires) - clock.now()).total_seconds() - 300)
    network.hold(partner, member, "h-1", 90)  # the lot's 90 free points, 5 minutes before its date
    clock.advance(minutes=20)  # past the lot's date and the hold's timeout; no job has run
    network.reverse(partner, "r-1", "b-1", 10)  # 10 points back, with the grace
    if releaser == "job":
        assert network.expire_holds() == 1
        final = {"available": 10, "held": 0}
    else:  # a short burn releases the hold first, then is refused; the batch's next burn commits it
        short, fits = network.post(partner, [Event("burn", "b-2", member, points=11),
                                             Event("burn", "b-3", member, points=1)])
        assert isinstance(short, errors.InsufficientPoints) and fits["balance"] == {"available": 9, "held": 0}
        final = {"available": 9, "held": 0}
    results = network.tx(lambda tx: tx.session.execute(select(Entry.kind, Entry.result).where(
        Entry.kind.in_(["hold_expiry", "expiry"]))).all(), readonly=True)
    assert sorted(kind for kind, _ in results) == ["expiry", "hold_expiry"]
    for kind, result in results:
        assert json.loads(result)["balance"] == {"available": 10, "held": 0}, kind  # before b-3, if any
    assert {key: network.balance(member)[key] for key in final} == final
    verify_ok(network)
