"""The worked example of the design doc, reproduced exactly."""

from shared.settlement.netting import bilateral_sums, net_positions
from sqlalchemy import select

from shared.models import ObligationLine
from tests.factories import make_member, make_partner, verify_ok

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")


def test_worked_example(network, clock):
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    air = make_partner(network, "AirLink", **TERMS)
    book = make_partner(network, "BookMart", **TERMS)
    member = make_member(network, coffee, also_linked_to=(air, book))

    l1 = network.earn(coffee, member, "coffee-1", points=500)["lots"][0]["lot_id"]
    clock.advance(minutes=5)
    l2 = network.earn(air, member, "air-1", points=300)["lots"][0]["lot_id"]
    clock.advance(minutes=5)
    burn = network.burn(book, member, "book-1", 600)

    assert burn["consumed"] == [{"lot_id": l1, "points": 500}, {"lot_id": l2, "points": 100}]
    assert burn["balance"] == {"available": 200, "held": 0}

    lines = network.tx(lambda tx: tx.session.execute(
        select(ObligationLine.payer, ObligationLine.payee, ObligationLine.kind, ObligationLine.amount_micro)
    ).all())
    sums = bilateral_sums(lines)
    assert sums == {
        (coffee, "network", "issuance_fee"): 50,
        (air, "network", "issuance_fee"): 30,
        (coffee, book, "redemption"): 500,
        (air, book, "redemption"): 100,
        (book, "network", "redemption_fee"): 30,
    }
    assert net_positions(sums) == dict(sorted({coffee: -550, air: -130, book: 570, "network": 110}.items()))
    assert sum(net_positions(sums).values()) == 0
    verify_ok(network)
