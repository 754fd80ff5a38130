"""A settlement paid in parts (a transfer short of bank charges, instalments): each transfer recorded with
its amount and bank reference (``settlement_payments``), the settlement paid or received only when they
add up to its by-bank amount, more than what is outstanding refused (docs/settlement-files.md, "Finance")."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from shared.errors import ValidationFailed
from shared.models import Settlement, SettlementPayment
from shared.settlement.finance import AlreadyRecorded, AmountExceedsDue, NothingDue, overdue, record_payment
from tests.factories import make_member, make_partner
from tests.interleave import Pause, overlap

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
CYCLE = date(2026, 11, 20)
LATE = date(2026, 11, 24)  # after the payment date, Monday 2026-11-23


@pytest.fixture
def settled(network, clock):
    """CoffeeCo pays 550 by bank (500 points issued, 10% fee); BookMart is paid 570 (600 redeemed, 5% fee)."""
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    air = make_partner(network, "AirLink", **TERMS)
    book = make_partner(network, "BookMart", **TERMS)
    member = make_member(network, coffee, also_linked_to=(air, book))
    network.earn(coffee, member, "coffee-1", points=500)
    network.earn(air, member, "air-1", points=300)
    network.burn(book, member, "book-1", 600)
    clock.advance(days=1)
    network.settle(CYCLE)
    return {"coffee": coffee, "book": book}


def pay(network, party, reference, amount=None):
    return network.tx(lambda tx: record_payment(tx, CYCLE, party, reference, amount_minor=amount))


def stored(network, party):
    def read(tx):
        row = tx.session.get(Settlement, (CYCLE, party))
        payments = tx.session.execute(select(SettlementPayment.amount_minor, SettlementPayment.bank_reference)
                                      .where(SettlementPayment.cycle_date == CYCLE, SettlementPayment.party == party)
                                      .order_by(SettlementPayment.id)).all()
        return row.status, row.bank_reference, [tuple(p) for p in payments]
    return network.tx(read, readonly=True)


def test_a_partial_payment_leaves_the_settlement_due_and_overdue_with_the_rest_outstanding(network, settled, clock):
    coffee = settled["coffee"]
    first = pay(network, coffee, "BK-1", 200)
    assert (first["status"], first["paid_minor"], first["outstanding_minor"]) == ("due", 200, 350)
    assert (first["by_bank_minor"], first["bank_reference"]) == (-550, "BK-1")
    assert stored(network, coffee) == ("due", None, [(200, "BK-1")])
    late = {row["party"]: row for row in network.tx(lambda tx: overdue(tx, LATE), readonly=True)}
    assert (late[coffee]["paid_minor"], late[coffee]["outstanding_minor"]) == (200, 350)
    clock.advance(hours=2)
    second = pay(network, coffee, "BK-2", 100)
    assert (second["status"], second["paid_minor"], second["outstanding_minor"]) == ("due", 300, 250)
    clock.advance(hours=2)
    last = pay(network, coffee, "BK-3", 250)  # exactly what is outstanding: paid in full
    assert (last["status"], last["paid_minor"], last["outstanding_minor"]) == ("paid", 550, 0)
    assert stored(network, coffee) == ("paid", "BK-3", [(200, "BK-1"), (100, "BK-2"), (250, "BK-3")])
    recorded_at = network.tx(lambda tx: tx.session.get(Settlement, (CYCLE, coffee)).recorded_at, readonly=True)
    assert recorded_at == clock.now()  # the completing payment's
    assert coffee not in {row["party"] for row in network.tx(lambda tx: overdue(tx, LATE), readonly=True)}


def test_without_an_amount_the_rest_outstanding_is_recorded(network, settled):
    book = settled["book"]
    assert pay(network, book, "IN-1", 500)["outstanding_minor"] == 70
    rest = pay(network, book, "IN-2")
    assert (rest["status"], rest["amount_minor"], rest["paid_minor"], rest["outstanding_minor"]) == \
        ("received", 70, 570, 0)  # amount_minor: this transfer's, the rest outstanding
    assert stored(network, book) == ("received", "IN-2", [(500, "IN-1"), (70, "IN-2")])


def test_without_an_amount_a_whole_payment_answers_as_before(network, settled):
    book = settled["book"]
    whole = pay(network, book, "  IN-9 ")
    assert whole == {"cycle_date": CYCLE.isoformat(), "party": book, "net_minor": 570, "from_float_minor": 0,
                     "by_bank_minor": 570, "status": "received", "bank_reference": "IN-9",
                     "amount_minor": 570, "paid_minor": 570, "outstanding_minor": 0}
    assert stored(network, book) == ("received", "IN-9", [(570, "IN-9")])


def test_more_than_the_outstanding_is_refused_naming_it(network, settled):
    coffee = settled["coffee"]
    with pytest.raises(AmountExceedsDue) as over:
        pay(network, coffee, "BK-1", 551)
    assert (over.value.status, over.value.code) == (409, "amount_exceeds_due")
    pay(network, coffee, "BK-1", 200)
    with pytest.raises(AmountExceedsDue) as over:
        pay(network, coffee, "BK-2", 351)
    assert "350" in over.value.detail and over.value.extra["outstanding_minor"] == 350, over.value.detail
    assert stored(network, coffee) == ("due", None, [(200, "BK-1")])


@pytest.mark.parametrize("amount", [0, -1])
def test_an_amount_of_nothing_or_less_is_invalid(network, settled, amount):
    with pytest.raises(ValidationFailed) as refused:
        pay(network, settled["coffee"], "BK-1", amount)
    assert refused.value.code == "validation_failed"
    assert stored(network, settled["coffee"]) == ("due", None, [])


def test_the_same_bank_reference_twice_is_already_recorded_and_the_first_stands(network, settled):
    coffee = settled["coffee"]
    pay(network, coffee, "BK-1", 200)
    with pytest.raises(AlreadyRecorded) as again:
        pay(network, coffee, "BK-1", 100)
    assert "BK-1" in again.value.detail and again.value.extra["bank_reference"] == "BK-1", again.value.detail
    assert stored(network, coffee) == ("due", None, [(200, "BK-1")])
    pay(network, coffee, "BK-2")
    with pytest.raises(AlreadyRecorded, match="is already paid: .* with bank reference BK-2$"):
        pay(network, coffee, "BK-3", 1)
    with pytest.raises(NothingDue):
        pay(network, "network-nobody", "BK-4", 1)


def test_two_partial_payments_at_once_beyond_the_outstanding_record_one(network, settled):
    """The first holds its transaction open after recording 300 of 550; the second, 300 too, begun
    meanwhile, waits for the settlement's lock (PostgreSQL; SQLite's one writer) and then finds only 250
    outstanding: refused, not both recorded."""
    coffee = settled["coffee"]
    pause = Pause()

    def first(tx):
        recorded = record_payment(tx, CYCLE, coffee, "BK-FIRST", amount_minor=300)
        pause()
        return recorded

    both = overlap(lambda: network.tx(first), lambda: pay(network, coffee, "BK-SECOND", 300), pause)
    assert both.first["outstanding_minor"] == 250, both.first
    assert isinstance(both.second, AmountExceedsDue), both.second
    assert both.second.extra["outstanding_minor"] == 250
    assert stored(network, coffee) == ("due", None, [(300, "BK-FIRST")])
