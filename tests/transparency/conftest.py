"""A small sealed network for the transparency tests: the design's worked example, checkpointed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import make_member, make_partner

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")


@dataclass
class Sealed:
    coffee: str
    air: str
    book: str
    member: str
    earn_coffee: str
    earn_air: str
    burn: str


@pytest.fixture
def sealed(network, clock) -> Sealed:
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    air = make_partner(network, "AirLink", **TERMS)
    book = make_partner(network, "BookMart", **TERMS)
    member = make_member(network, coffee, also_linked_to=(air, book))
    e1 = network.earn(coffee, member, "coffee-1", points=500)["entry_id"]
    clock.advance(minutes=5)
    e2 = network.earn(air, member, "air-1", points=300)["entry_id"]
    clock.advance(minutes=5)
    burn = network.burn(book, member, "book-1", 600)["entry_id"]
    network.checkpoint()
    return Sealed(coffee, air, book, member, e1, e2, burn)
