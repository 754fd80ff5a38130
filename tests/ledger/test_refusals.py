"""Refusals: every bad request gets its own typed error with a stable code, and writes nothing.

"Nothing" is checked on the whole ledger: row counts of every ledger table, every
member's stored balances, every lot's remaining/reserved/expiry and every hold's
status are compared before and after the refused call.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from shared import errors
from shared.ledger.events import Event
from shared.models import Entry, Hold, HoldLot, Lot, LotConsumption, Member, ObligationLine, Transfer
from tests.factories import make_member, make_partner, verify_ok

LEDGER_TABLES = (Entry, Transfer, Lot, LotConsumption, ObligationLine, Hold, HoldLot)


def snapshot(network) -> dict:
    """Everything a refusal must leave untouched."""

    def read(tx):
        session = tx.session
        return {
            "counts": {model.__tablename__: session.execute(select(func.count()).select_from(model)).scalar_one()
                       for model in LEDGER_TABLES},
            "members": sorted(session.execute(select(Member.id, Member.available, Member.held)).all()),
            "lots": sorted(session.execute(select(Lot.id, Lot.remaining, Lot.reserved, Lot.expires_at)).all()),
            "holds": sorted(session.execute(select(Hold.id, Hold.status, Hold.captured_points)).all()),
        }

    return network.tx(read, readonly=True)


@pytest.fixture
def shop(network):
    """A partner with a member holding 100 points (seed earn), 40 of them in an open hold."""
    partner = make_partner(network, "Shop", issuance_fee="0.1", redemption_fee_rate="0.05")
    other = make_partner(network, "Other")
    member = make_member(network, partner)
    stranger = make_member(network, other)
    network.earn(other, stranger, "stranger-seed", points=50)
    network.earn(partner, member, "seed", points=100)
    hold = network.hold(partner, member, "hold-1", 40)
    return {"partner": partner, "other": other, "member": member, "stranger": stranger, "hold": hold["hold_id"]}


def refused(network, error_type, call):
    """Run ``call``; it must raise exactly ``error_type`` and leave the ledger as it was."""
    before = snapshot(network)
    with pytest.raises(errors.PointsnetError) as caught:
        call()
    error = caught.value
    assert type(error) is error_type, f"expected {error_type.__name__}, got {type(error).__name__}: {error}"
    assert error.code == error_type.code
    problem = error.to_problem()
    assert problem["code"] == error_type.code and problem["status"] == error_type.status
    assert problem["status"] in (403, 404, 409, 422)
    after = snapshot(network)
    assert after == before, "a refused request wrote to the ledger"
    return error


# -- each bad input, its own code ------------------------------------------------------------------

CASES = [
    # points
    ("earn zero points", errors.InvalidPoints, lambda n, s: n.earn(s["partner"], s["member"], "x", points=0)),
    ("burn zero points", errors.InvalidPoints, lambda n, s: n.burn(s["partner"], s["member"], "x", 0)),
    ("earn negative points", errors.InvalidPoints, lambda n, s: n.earn(s["partner"], s["member"], "x", points=-5)),
    ("burn negative points", errors.InvalidPoints, lambda n, s: n.burn(s["partner"], s["member"], "x", -1)),
    ("hold negative points", errors.InvalidPoints, lambda n, s: n.hold(s["partner"], s["member"], "x", -3)),
    ("fractional points", errors.InvalidPoints, lambda n, s: n.earn(s["partner"], s["member"], "x", points=2.5)),
    ("float whole points", errors.InvalidPoints, lambda n, s: n.burn(s["partner"], s["member"], "x", 5.0)),
    ("points as text", errors.InvalidPoints, lambda n, s: n.earn(s["partner"], s["member"], "x", points="5")),
    ("points as bool", errors.InvalidPoints, lambda n, s: n.earn(s["partner"], s["member"], "x", points=True)),
    ("absurd points", errors.InvalidPoints, lambda n, s: n.earn(s["partner"], s["member"], "x", points=10**13)),
    ("reversal of zero points", errors.InvalidPoints, lambda n, s: n.reverse(s["partner"], "x", "seed", 0)),
    ("capture of negative points", errors.InvalidPoints, lambda n, s: n.capture(s["partner"], s["hold"], -1)),
    # members and partners
    ("earn for an unknown member", errors.UnknownMember,
     lambda n, s: n.earn(s["partner"], "mem_nobody", "x", points=5)),
    ("burn for an unknown member", errors.UnknownMember, lambda n, s: n.burn(s["partner"], "mem_nobody", "x", 1)),
    ("earn for a member not linked here", errors.UnknownMember,
     lambda n, s: n.earn(s["partner"], s["stranger"], "x", points=5)),
    ("burn for a member not linked here", errors.UnknownMember,
     lambda n, s: n.burn(s["partner"], s["stranger"], "x", 1)),
    ("hold for a member not linked here", errors.UnknownMember,
     lambda n, s: n.hold(s["partner"], s["stranger"], "x", 1)),
    ("unknown partner earns", errors.UnknownPartner, lambda n, s: n.earn("ptn_nobody", s["member"], "x", points=5)),
    ("unknown partner burns", errors.UnknownPartner, lambda n, s: n.burn("ptn_nobody", s["member"], "x", 5)),
    ("unknown partner reverses", errors.UnknownPartner, lambda n, s: n.reverse("ptn_nobody", "x", "seed")),
    # holds
    ("capture above the hold", errors.CaptureExceedsHold, lambda n, s: n.capture(s["partner"], s["hold"], 41)),
    ("capture of an unknown hold", errors.UnknownHold, lambda n, s: n.capture(s["partner"], "hld_nobody")),
    ("capture of another partner's hold", errors.UnknownHold, lambda n, s: n.capture(s["other"], s["hold"])),
    ("void of another partner's hold", errors.UnknownHold, lambda n, s: n.void(s["other"], s["hold"])),
    # reversals
    ("reversal of an unknown reference", errors.UnknownReference,
     lambda n, s: n.reverse(s["partner"], "x", "no-such-ref")),
    ("reversal of another partner's reference", errors.UnknownReference,
     lambda n, s: n.reverse(s["partner"], "x", "stranger-seed")),
    ("reversal of an earn beyond what remains", errors.PointsAlreadySpent,
     lambda n, s: n.reverse(s["partner"], "x", "seed", 61)),
    ("reversal of a hold", errors.NotReversible, lambda n, s: n.reverse(s["partner"], "x", "hold-1")),
    # balance
    ("burn beyond the available balance", errors.InsufficientPoints,
     lambda n, s: n.burn(s["partner"], s["member"], "x", 61)),
    ("hold beyond the available balance", errors.InsufficientPoints,
     lambda n, s: n.hold(s["partner"], s["member"], "x", 61)),
    # time
    ("occurred_at older than 72 h", errors.OccurredAtOutOfRange,
     lambda n, s: n.earn(s["partner"], s["member"], "x", points=5,
                         occurred_at=n.clock.now() - timedelta(hours=72, seconds=1))),
    ("occurred_at a week ago", errors.OccurredAtOutOfRange,
     lambda n, s: n.earn(s["partner"], s["member"], "x", points=5, occurred_at=n.clock.now() - timedelta(days=7))),
    ("occurred_at in the future", errors.OccurredAtOutOfRange,
     lambda n, s: n.earn(s["partner"], s["member"], "x", points=5,
                         occurred_at=n.clock.now() + timedelta(seconds=1))),
    ("burn occurred_at in the future", errors.OccurredAtOutOfRange,
     lambda n, s: n.burn(s["partner"], s["member"], "x", 5, occurred_at=n.clock.now() + timedelta(hours=1))),
    # references
    ("reference reused for a different earn", errors.ReferenceConflict,
     lambda n, s: n.earn(s["partner"], s["member"], "seed", points=7)),
    ("reference reused for a burn", errors.ReferenceConflict,
     lambda n, s: n.burn(s["partner"], s["member"], "seed", 100)),
    # amounts
    ("a purchase too small to earn", errors.NothingToEarn,
     lambda n, s: n.earn(s["partner"], s["member"], "x", amount=50)),
    ("a foreign currency", errors.InvalidAmount,
     lambda n, s: n.earn(s["partner"], s["member"], "x", amount=500, currency="USD")),
    ("a negative amount", errors.InvalidAmount, lambda n, s: n.earn(s["partner"], s["member"], "x", amount=-500)),
    ("an earn with neither amount nor points", errors.InvalidAmount,
     lambda n, s: n.earn(s["partner"], s["member"], "x")),
]


@pytest.mark.parametrize("name,error_type,call", CASES, ids=[c[0] for c in CASES])
def test_refused_with_its_code_and_nothing_written(network, shop, name, error_type, call):
    refused(network, error_type, lambda: call(network, shop))
    verify_ok(network)


def test_each_kind_of_refusal_has_its_own_code():
    kinds = {error_type for _, error_type, _ in CASES} | {errors.HoldNotOpen, errors.ReversalExceedsRemaining,
                                                           errors.IdempotencyKeyReused}
    codes = [kind.code for kind in kinds]
    assert len(codes) == len(set(codes)), codes
    for kind in kinds:  # stable, machine-readable: snake_case, not the generic parent codes
        assert kind.code.replace("_", "").isalpha() and kind.code.islower()
        assert kind.code not in ("error", "validation_failed", "not_found", "conflict")


def test_codes_are_stable():
    """Partners switch on these strings: renaming one is a breaking change."""
    assert {
        errors.InvalidPoints: "invalid_points", errors.UnknownMember: "unknown_member",
        errors.UnknownPartner: "unknown_partner", errors.CaptureExceedsHold: "capture_exceeds_hold",
        errors.HoldNotOpen: "hold_not_open", errors.UnknownReference: "unknown_reference",
        errors.PointsAlreadySpent: "points_already_spent",
        errors.ReversalExceedsRemaining: "reversal_exceeds_remaining",
        errors.OccurredAtOutOfRange: "occurred_at_out_of_range", errors.ReferenceConflict: "reference_conflict",
        errors.IdempotencyKeyReused: "idempotency_key_reused", errors.InsufficientPoints: "insufficient_points",
        errors.ConsentRequired: "consent_required", errors.UnknownHold: "unknown_hold",
    } == {kind: kind.code for kind in (
        errors.InvalidPoints, errors.UnknownMember, errors.UnknownPartner, errors.CaptureExceedsHold,
        errors.HoldNotOpen, errors.UnknownReference, errors.PointsAlreadySpent, errors.ReversalExceedsRemaining,
        errors.OccurredAtOutOfRange, errors.ReferenceConflict, errors.IdempotencyKeyReused,
        errors.InsufficientPoints, errors.ConsentRequired, errors.UnknownHold)}


# -- a member not linked to this partner is indistinguishable from no member at all -----------------

def _problem_without_id(error: errors.PointsnetError, member_id: str) -> dict:
    return {key: (value.replace(member_id, "<id>") if isinstance(value, str) else value)
            for key, value in error.to_problem().items()}


@pytest.mark.parametrize("operation", ["earn", "burn", "hold", "mint_link_token"])
def test_unlinked_member_looks_exactly_like_an_unknown_member(network, shop, operation):
    def call(member_id):
        if operation == "earn":
            return network.earn(shop["partner"], member_id, "x", points=5)
        if operation == "burn":
            return network.burn(shop["partner"], member_id, "x", 5)
        if operation == "hold":
            return network.hold(shop["partner"], member_id, "x", 5)
        return network.mint_link_token(shop["partner"], member_id)

    # same length and shape of id, so not even the message length gives the stranger away
    nobody = "mem_" + "z" * (len(shop["stranger"]) - 4)
    unlinked = refused(network, errors.UnknownMember, lambda: call(shop["stranger"]))
    unknown = refused(network, errors.UnknownMember, lambda: call(nobody))
    assert _problem_without_id(unlinked, shop["stranger"]) == _problem_without_id(unknown, nobody)
    assert unlinked.extra == unknown.extra == {}


def test_another_partners_hold_and_reference_look_exactly_like_unknown_ones(network, shop):
    theirs = refused(network, errors.UnknownHold, lambda: network.void(shop["other"], shop["hold"]))
    nobody = refused(network, errors.UnknownHold, lambda: network.void(shop["other"], "hld_" + "z" * 20))
    assert theirs.extra == nobody.extra and type(theirs) is type(nobody)
    theirs = refused(network, errors.UnknownReference, lambda: network.reverse(shop["other"], "r", "seed"))
    nobody = refused(network, errors.UnknownReference, lambda: network.reverse(shop["other"], "r", "seez"))
    assert theirs.to_problem()["detail"].replace("seed", "seez") == nobody.to_problem()["detail"]


# -- holds -----------------------------------------------------------------------------------------

def test_capture_above_the_hold_names_the_held_points(network, shop):
    error = refused(network, errors.CaptureExceedsHold, lambda: network.capture(shop["partner"], shop["hold"], 41))
    assert error.extra["held"] == 40
    # the hold is still open and capturable in full afterwards
    assert network.capture(shop["partner"], shop["hold"], 40)["captured"] == 40


def test_a_second_capture_is_refused(network, shop):
    network.capture(shop["partner"], shop["hold"], 10)
    for points in (10, None, 1):
        error = refused(network, errors.HoldNotOpen, lambda: network.capture(shop["partner"], shop["hold"], points))
        assert error.extra.get("hold_status") == "captured"
    refused(network, errors.HoldNotOpen, lambda: network.void(shop["partner"], shop["hold"]))
    assert network.balance(shop["member"])["available"] == 90
    verify_ok(network)


def test_capture_after_void_is_refused(network, shop):
    network.void(shop["partner"], shop["hold"])
    error = refused(network, errors.HoldNotOpen, lambda: network.capture(shop["partner"], shop["hold"], 10))
    assert error.extra.get("hold_status") == "voided"
    refused(network, errors.HoldNotOpen, lambda: network.void(shop["partner"], shop["hold"]))
    assert network.balance(shop["member"])["available"] == 100


def test_capture_after_the_hold_timed_out_is_refused(network, shop, clock):
    clock.advance(minutes=16)
    refused(network, errors.HoldNotOpen, lambda: network.capture(shop["partner"], shop["hold"], 10))
    assert network.expire_holds() == 1
    error = refused(network, errors.HoldNotOpen, lambda: network.capture(shop["partner"], shop["hold"], 10))
    assert error.extra.get("hold_status") == "expired"


def test_void_with_points_is_refused(network, shop):
    refused(network, errors.InvalidPoints,
            lambda: network._one(shop["partner"], Event("void", None, points=5, hold_id=shop["hold"])))


# -- reversals -------------------------------------------------------------------------------------

def test_reversing_an_earn_beyond_what_remains_names_the_remaining_points(network, shop):
    network.burn(shop["partner"], shop["member"], "spend", 50)  # earn of 100: 40 held, 50 spent, 10 free
    error = refused(network, errors.PointsAlreadySpent, lambda: network.reverse(shop["partner"], "r", "seed", 20))
    assert error.extra["remaining"] == 10
    assert error.to_problem()["remaining"] == 10
    # what remains can be reversed; then nothing remains
    assert network.reverse(shop["partner"], "r", "seed", 10)["reversible_remaining"] == 0
    error = refused(network, errors.PointsAlreadySpent, lambda: network.reverse(shop["partner"], "r2", "seed", 1))
    assert error.extra["remaining"] == 0
    verify_ok(network)


def test_a_full_reversal_of_a_partly_spent_earn_is_refused(network, shop):
    """No ``points`` means: reverse the whole earn (100). Only 10 remain with the member, so
    the reversal must be refused with points_already_spent naming 10 — the merchant settles
    the other 90 in cash — not silently shrunk to a partial reversal of 10."""
    network.burn(shop["partner"], shop["member"], "spend", 50)  # earn of 100: 40 held, 50 spent, 10 free
    error = refused(network, errors.PointsAlreadySpent, lambda: network.reverse(shop["partner"], "r", "seed"))
    assert error.extra["remaining"] == 10


def test_a_full_reversal_of_an_unspent_earn_takes_it_all(network, shop):
    network.void(shop["partner"], shop["hold"])
    result = network.reverse(shop["partner"], "r", "seed")
    assert result["points"] == 100 and result["balance"] == {"available": 0, "held": 0}
    verify_ok(network)


def test_reversing_a_burn_beyond_what_remains(network, shop):
    network.burn(shop["partner"], shop["member"], "spend", 30)
    network.reverse(shop["partner"], "r1", "spend", 20)
    error = refused(network, errors.ReversalExceedsRemaining,
                    lambda: network.reverse(shop["partner"], "r2", "spend", 11))
    assert error.extra["remaining"] == 10
    network.reverse(shop["partner"], "r2", "spend", 10)
    error = refused(network, errors.ReversalExceedsRemaining, lambda: network.reverse(shop["partner"], "r3", "spend"))
    assert error.extra["remaining"] == 0
    verify_ok(network)


def test_reversing_a_capture_beyond_what_was_captured(network, shop):
    network.capture(shop["partner"], shop["hold"], 25, reference="cap-1")
    error = refused(network, errors.ReversalExceedsRemaining,
                    lambda: network.reverse(shop["partner"], "r", "cap-1", 26))
    assert error.extra["remaining"] == 25


def test_a_reversal_cannot_itself_be_reversed(network, shop):
    network.burn(shop["partner"], shop["member"], "spend", 30)
    network.reverse(shop["partner"], "r1", "spend")
    refused(network, errors.NotReversible, lambda: network.reverse(shop["partner"], "r2", "r1"))


# -- occurred_at window ----------------------------------------------------------------------------

def test_occurred_at_window_edges(network, shop, clock):
    now = clock.now()
    assert network.earn(shop["partner"], shop["member"], "edge-old", points=1,
                        occurred_at=now - timedelta(hours=72))["points"] == 1
    assert network.earn(shop["partner"], shop["member"], "edge-now", points=1, occurred_at=now)["points"] == 1
    error = refused(network, errors.OccurredAtOutOfRange,
                    lambda: network.earn(shop["partner"], shop["member"], "x", points=1,
                                         occurred_at=now - timedelta(hours=72, microseconds=1)))
    assert error.extra["posted_at"] == now.isoformat()


def test_occurred_at_without_a_time_zone_is_refused_per_event_in_a_batch(network, shop):
    """A naive instant cannot be placed in the window: that event gets a typed validation
    refusal; it must not crash the whole batch (the good event still posts)."""
    naive = datetime(2026, 11, 20, 1, 0)
    before = snapshot(network)
    outcomes = network.post(shop["partner"], [Event("earn", "good", shop["member"], points=1),
                                              Event("earn", "naive", shop["member"], points=1, occurred_at=naive)])
    assert isinstance(outcomes[1], errors.ValidationFailed)
    assert outcomes[0]["kind"] == "earn"
    assert snapshot(network)["counts"]["entries"] == before["counts"]["entries"] + 1


# -- references and idempotency keys ---------------------------------------------------------------

def test_reference_conflict_names_what_differs(network, shop):
    error = refused(network, errors.ReferenceConflict, lambda: network.earn(shop["partner"], shop["member"], "seed",
                                                                            points=7))
    assert error.extra["differs"] == ["points"] and error.extra["reference"] == "seed"
    assert "points" in error.detail
    other_member = make_member(network, shop["partner"])
    error = refused(network, errors.ReferenceConflict,
                    lambda: network.earn(shop["partner"], other_member, "seed", points=100))
    assert error.extra["differs"] == ["member_id"]
    error = refused(network, errors.ReferenceConflict,
                    lambda: network.burn(shop["partner"], shop["member"], "seed", 100))
    assert error.extra["differs"] == ["kind"]
    error = refused(network, errors.ReferenceConflict,
                    lambda: network.earn(shop["partner"], other_member, "seed", points=8))
    assert error.extra["differs"] == ["member_id", "points"]


def test_same_reference_same_content_returns_the_original_result(network, shop):
    first = network.earn(shop["partner"], shop["member"], "again", points=9)
    network.earn(shop["partner"], shop["member"], "later", points=1)
    before = snapshot(network)
    again = network.earn(shop["partner"], shop["member"], "again", points=9)
    assert again == first  # the original result, balance as it was then, not a new posting
    assert again["balance"]["available"] == 69
    assert snapshot(network) == before
    burn = network.burn(shop["partner"], shop["member"], "spend", 5)
    assert network.burn(shop["partner"], shop["member"], "spend", 5) == burn
    reversal = network.reverse(shop["partner"], "undo", "spend", 2)
    before = snapshot(network)
    assert network.reverse(shop["partner"], "undo", "spend", 2) == reversal
    assert snapshot(network) == before
    assert network.balance(shop["member"])["available"] == 67


def test_same_reference_with_a_different_partner_is_a_new_request(network, shop):
    # references are unique per partner, not network-wide
    result = network.earn(shop["other"], shop["stranger"], "seed", points=100)
    assert result["reference"] == "seed" and result["balance"]["available"] == 150


def test_idempotency_key_reused_with_a_different_body(network, shop):
    first = network.earn(shop["partner"], shop["member"], "k1", points=3, idempotency_key="K")
    assert network.earn(shop["partner"], shop["member"], "k1", points=3, idempotency_key="K") == first
    error = refused(network, errors.IdempotencyKeyReused,
                    lambda: network.earn(shop["partner"], shop["member"], "k2", points=3, idempotency_key="K"))
    assert error.extra["differs"] == ["reference"]
    error = refused(network, errors.IdempotencyKeyReused,
                    lambda: network.earn(shop["partner"], shop["member"], "k1", points=4, idempotency_key="K"))
    assert error.extra["differs"] == ["points"]
    error = refused(network, errors.IdempotencyKeyReused,
                    lambda: network.burn(shop["partner"], shop["member"], "k1", 3, idempotency_key="K"))
    assert "kind" in error.extra["differs"]
    # the key belongs to the partner: another partner may use the same key
    network.earn(shop["other"], shop["stranger"], "k1", points=3, idempotency_key="K")


# -- batches ---------------------------------------------------------------------------------------

def test_a_bad_event_in_a_batch_gets_its_error_while_the_others_post(network, shop, clock):
    member = shop["member"]
    before = snapshot(network)
    outcomes = network.post(shop["partner"], [
        Event("earn", "b1", member, points=5),
        Event("burn", "b2", member, points=10_000),
        Event("earn", "b3", "mem_nobody", points=5),
        Event("earn", "b4", member, points=0),
        Event("earn", "b5", shop["stranger"], points=5),
        Event("reversal", "b6", original_reference="nope"),
        Event("earn", "b7", member, points=5, occurred_at=clock.now() - timedelta(days=4)),
        Event("earn", "seed", member, points=1),
        Event("capture", "b9", points=41, hold_id=shop["hold"]),
        Event("reversal", "b10", points=500, original_reference="seed"),
        Event("burn", "b11", member, points=5),
        Event("earn", "b12", member, points=2.5),
    ])
    codes = [o["kind"] if isinstance(o, dict) else o.code for o in outcomes]
    assert codes == ["earn", "insufficient_points", "unknown_member", "invalid_points", "unknown_member",
                     "unknown_reference", "occurred_at_out_of_range", "reference_conflict", "capture_exceeds_hold",
                     "points_already_spent", "burn", "invalid_points"]
    for outcome in outcomes:
        if not isinstance(outcome, dict):
            assert isinstance(outcome, errors.PointsnetError)
    after = snapshot(network)
    # exactly two entries (b1, b11), each with one transfer; nothing from the refused events
    assert after["counts"]["entries"] == before["counts"]["entries"] + 2
    assert after["counts"]["transfers"] == before["counts"]["transfers"] + 2
    assert after["counts"]["lots"] == before["counts"]["lots"] + 1
    assert network.balance(member)["available"] == 60
    assert network.balance(shop["stranger"])["available"] == 50
    assert after["holds"] == before["holds"]
    # the refused references are free: a corrected event with the same reference posts
    assert network.earn(shop["partner"], member, "b2", points=1)["kind"] == "earn"
    verify_ok(network)


def test_a_batch_replays_and_conflicts_by_reference(network, shop):
    member = shop["member"]
    first = network.post(shop["partner"], [Event("earn", "r1", member, points=5)])[0]
    outcomes = network.post(shop["partner"], [
        Event("earn", "r1", member, points=5),  # replay of a stored one
        Event("earn", "r2", member, points=6),
        Event("earn", "r2", member, points=6),  # twin inside the batch: same result, posted once
        Event("earn", "r2", member, points=7),  # conflicting twin
    ])
    assert outcomes[0] == first
    assert outcomes[1] == outcomes[2] and outcomes[1]["kind"] == "earn"
    assert isinstance(outcomes[3], errors.ReferenceConflict) and outcomes[3].extra["differs"] == ["points"]
    assert network.balance(member)["available"] == 60 + 5 + 6
    verify_ok(network)


def test_an_unknown_partner_batch_is_refused_whole(network, shop):
    refused(network, errors.UnknownPartner,
            lambda: network.post("ptn_nobody", [Event("earn", "b1", shop["member"], points=5)]))


def test_a_batch_too_large_is_refused_whole(network, shop):
    events = [Event("earn", f"e{i}", shop["member"], points=1) for i in range(10_001)]
    refused(network, errors.BatchTooLarge, lambda: network.post(shop["partner"], events))
