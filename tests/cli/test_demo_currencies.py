"""The demo in a network whose currency has no minor unit (JPY) or three decimals (KWD) buys as much as a
CNY one: purchases of 8 to 600 major units, so earns of the same points and burns that mostly succeed."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from services import demo
from shared.config import Settings
from shared.models import Entry
from shared.network import Network


@pytest.mark.parametrize(("currency", "low", "high"), [("CNY", 800, 60000), ("JPY", 8, 600), ("KWD", 8000, 600000)])
def test_a_purchase_is_the_same_major_units_in_every_currency(currency, low, high):
    amounts = [demo.purchase(random.Random(n), 800, 60000, currency) for n in range(200)]
    assert low <= min(amounts) and max(amounts) <= high
    assert [demo.purchase(random.Random(n), 800, 60000, "CNY") for n in range(200)] == \
        [random.Random(n).randint(800, 60000) for n in range(200)]  # the CNY demo is the one it always was


@pytest.mark.parametrize("currency", ["JPY", "KWD"])
def test_a_demo_in_another_currency_earns_and_spends_like_the_cny_one(tmp_path, database_url, currency):
    network = Network(Settings(data_dir=tmp_path / "data", currency=currency), database_url=database_url)
    try:
        counts = demo.seed(network, members=30, days=3)
        largest = network.tx(lambda tx: tx.session.scalar(select(func.max(Entry.points))
                                                          .where(Entry.kind == "earn")), readonly=True)
    finally:
        network.close()
    assert counts["refused"] < counts["events"] * 0.25, counts  # the burns of 50 to 300 points find points
    assert largest <= 2 * 600 + 20, largest  # 600 major units at 1 point each, doubled, a bonus at most
