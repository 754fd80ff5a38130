"""Bad input gets a distinct typed error with a stable code, and writes nothing."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shared import errors
from shared.ledger.events import Event
from shared.ledger.posting import quote_earn
from shared.models import Entry, Lot, ObligationLine, Transfer
from tests.factories import make_member, make_partner


@pytest.fixture
def shop(network):
    partner = make_partner(network, issuance_fee="0.1")
    other = make_partner(network)
    member = make_member(network, partner)
    stranger = make_member(network, other)
    network.earn(partner, member, "seed", points=100)
    hold = network.hold(partner, member, "hold-1", 40)
    return {"partner": partner, "other": other, "member": member, "stranger": stranger, "hold": hold["hold_id"]}


def footprint(network):
    def count(tx):
        return tuple(tx.session.execute(select(func.count()).select_from(model)).scalar_one()
                     for model in (Entry, Transfer, Lot, ObligationLine))
    return network.tx(count, readonly=True)


CASES = [
    ("zero points", lambda n, s: n.burn(s["partner"], s["member"], "x", 0), errors.InvalidPoints),
    ("negative points", lambda n, s: n.earn(s["partner"], s["member"], "x", points=-5), errors.InvalidPoints),
    ("fractional points", lambda n, s: n.earn(s["partner"], s["member"], "x", points=2.5), errors.InvalidPoints),
    ("unknown member", lambda n, s: n.earn(s["partner"], "mem_nobody", "x", points=5), errors.UnknownMember),
    ("member of another partner", lambda n, s: n.burn(s["partner"], s["stranger"], "x", 1), errors.UnknownMember),
    ("unknown partner", lambda n, s: n.earn("ptn_nobody", s["member"], "x", points=5), errors.UnknownPartner),
    ("capture above the hold", lambda n, s: n.capture(s["partner"], s["hold"], 41), errors.CaptureExceedsHold),
    ("hold of another partner", lambda n, s: n.capture(s["other"], s["hold"]), errors.UnknownHold),
    ("unknown reference", lambda n, s: n.reverse(s["partner"], "x", "no-such-ref"), errors.UnknownReference),
    ("reversal beyond what remains", lambda n, s: n.reverse(s["partner"], "x", "seed", 61),
     errors.PointsAlreadySpent),
    ("reversal of a hold", lambda n, s: n.reverse(s["partner"], "x", "hold-1"), errors.NotReversible),
    ("burn beyond the balance", lambda n, s: n.burn(s["partner"], s["member"], "x", 61), errors.InsufficientPoints),
    ("occurred_at too old", lambda n, s: n.earn(s["partner"], s["member"], "x", points=5,
                                                occurred_at=n.clock.now() - timedelta(hours=73)),
     errors.OccurredAtOutOfRange),
    ("occurred_at in the future", lambda n, s: n.earn(s["partner"], s["member"], "x", points=5,
                                                      occurred_at=n.clock.now() + timedelta(minutes=5)),
     errors.OccurredAtOutOfRange),
    ("reference reused for something else", lambda n, s: n.earn(s["partner"], s["member"], "seed", points=7),
     errors.ReferenceConflict),
    ("a purchase too small to earn", lambda n, s: n.earn(s["partner"], s["member"], "x", amount=50),
     errors.NothingToEarn),
    ("a foreign currency", lambda n, s: n.earn(s["partner"], s["member"], "x", amount=500, currency="USD"),
     errors.InvalidAmount),
    ("a NUL in a member id (PostgreSQL cannot store one)",
     lambda n, s: n.earn(s["partner"], s["member"] + "\x00", "x", points=5), errors.ValidationFailed),
    ("a NUL in an original reference", lambda n, s: n.reverse(s["partner"], "x", "seed\x00"), errors.ValidationFailed),
    # 10**15 fen at the default 1 point per yuan: 10**13 points, above what explicit points may be (10**12)
    ("a purchase earning more points than one earn carries",
     lambda n, s: n.earn(s["partner"], s["member"], "x", amount=10**15), errors.InvalidAmount),
    ("a quote of such a purchase",
     lambda n, s: n.tx(lambda tx: quote_earn(tx, s["partner"], Event("earn", "x", s["member"], amount=10**15)),
                       readonly=True), errors.InvalidAmount),
]


@pytest.mark.parametrize("name,call,error", CASES, ids=[c[0] for c in CASES])
def test_refused_with_its_code_and_nothing_written(network, shop, name, call, error):
    before, balance = footprint(network), network.balance(shop["member"])
    with pytest.raises(error) as refusal:
        call(network, shop)
    assert refusal.value.code == error.code and refusal.value.status in (403, 404, 409, 422)
    assert refusal.value.to_problem()["code"] == error.code
    assert footprint(network) == before
    assert network.balance(shop["member"]) == balance


def test_codes_are_distinct():
    codes = [error.code for _, _, error in CASES]
    assert len(set(codes)) == len({e for _, _, e in CASES})


def test_second_capture_is_refused(network, shop):
    network.capture(shop["partner"], shop["hold"], 10)
    before = footprint(network)
    with pytest.raises(errors.HoldNotOpen) as refusal:
        network.capture(shop["partner"], shop["hold"], 10)
    assert refusal.value.code == "hold_not_open" and footprint(network) == before


def test_remaining_points_are_named_when_a_reversal_is_refused(network, shop):
    network.burn(shop["partner"], shop["member"], "spend", 50)  # the earn of 100 now has 10 free (40 held)
    with pytest.raises(errors.PointsAlreadySpent) as refusal:
        network.reverse(shop["partner"], "r", "seed", 20)
    assert refusal.value.extra["remaining"] == 10


def test_same_reference_same_content_returns_the_original(network, shop):
    first = network.earn(shop["partner"], shop["member"], "again", points=9)
    assert network.earn(shop["partner"], shop["member"], "again", points=9) == first
    with pytest.raises(errors.ReferenceConflict) as refusal:
        network.earn(shop["partner"], shop["member"], "again", points=10)
    assert refusal.value.extra["differs"] == ["points"]


def test_idempotency_key_reused_for_another_request(network, shop):
    network.earn(shop["partner"], shop["member"], "k1", points=3, idempotency_key="K")
    with pytest.raises(errors.IdempotencyKeyReused):
        network.earn(shop["partner"], shop["member"], "k2", points=3, idempotency_key="K")


def test_a_bad_event_in_a_batch_does_not_stop_the_others(network, shop):
    outcomes = network.post(shop["partner"], [
        Event("earn", "b1", shop["member"], points=5),
        Event("burn", "b2", shop["member"], points=10_000),
        Event("earn", "b3", "mem_nobody", points=5),
        Event("earn", "b4", shop["member"], points=0),
        Event("burn", "b5", shop["member"], points=5),
    ])
    kinds = [o["kind"] if isinstance(o, dict) else o.code for o in outcomes]
    assert kinds == ["earn", "insufficient_points", "unknown_member", "invalid_points", "burn"]
    assert network.balance(shop["member"])["available"] == 60
