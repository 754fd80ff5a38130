"""The hand-checked coalition every report test reads (figures worked out in test_partner_report.py).

Postpaid terms for all: 1 point = 1 fen, issuance fee 0.1 fen per point, redemption fee 5 %;
1 point per yuan; lots expire 25 days after the earn. CoffeeCo runs a double-points day on
2026-11-21.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from shared.config import Settings
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
NOV20, NOV21, DEC15 = date(2026, 11, 20), date(2026, 11, 21), date(2026, 12, 15)
CAMPAIGN = {"campaigns": [{"id": "double", "name": "Double points day", "starts_on": "2026-11-21",
                           "ends_on": "2026-11-21", "multiplier": "2"}]}


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=Path(tmp_path) / "data", expiry_policy="days:25")


@pytest.fixture
def coalition(network, clock):
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    air = make_partner(network, "AirLink", **TERMS)
    book = make_partner(network, "BookMart", **TERMS)
    network.tx(lambda tx: set_rules(tx, coffee, json.dumps(CAMPAIGN)))
    # 2026-11-20, from 10:00 in Shanghai
    m1 = make_member(network, coffee, also_linked_to=(air, book))
    m2 = make_member(network, book, also_linked_to=(coffee,))
    network.earn(coffee, m1, "c1", amount=50000)                 # L1 coffee 500
    clock.advance(minutes=5)
    network.earn(air, m1, "a1", points=300)                      # L2 air 300
    clock.advance(minutes=5)
    network.burn(book, m1, "b1", 600)                            # L1 500 + L2 100 at BookMart
    network.earn(coffee, m2, "c2", amount=20000)                 # L3 coffee 200
    network.earn(coffee, m1, "c3", amount=10000)                 # L4 coffee 100
    # 2026-11-21 10:00: the double-points day
    clock.set(datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc))
    network.earn(coffee, m1, "c5", amount=40000)                 # L5 coffee 400 + 400 campaign
    network.burn(book, m2, "b2", 50)                             # L3 50 at BookMart
    network.reverse(book, "b2r", "b2", 20)                       # 20 back to L3
    network.reverse(coffee, "c3r", "c3")                         # L4 100 taken back
    network.burn(coffee, m1, "c4", 150)                          # L2 150 at CoffeeCo
    network.earn(air, m1, "a2", amount=5000)                     # L6 air 50
    # 2026-12-15 11:00: the lots of 2026-11-20 have expired
    clock.set(datetime(2026, 12, 15, 3, 0, tzinfo=timezone.utc))
    assert network.expire_lots() == 220                          # L2 50 (air), L3 170 (coffee)
    m3 = make_member(network, coffee)
    network.earn(coffee, m3, "c6", amount=30000)                 # L7 coffee 300
    clock.set(datetime(2026, 12, 16, 3, 0, tzinfo=timezone.utc))
    for cycle in (NOV20, NOV21, DEC15):
        network.settle(cycle)
    return {"coffee": coffee, "air": air, "book": book, "m1": m1, "m2": m2, "m3": m3}
