"""A month's reports wait for every day of it to be settled: a write still in flight at midnight into a
quiet last day (whose ``cycles`` row that write's own transaction is making) is in the monthly set."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from shared.ledger import posting as posting_module
from shared.ledger.events import Event
from shared.reports.delivery import publish_due, reports_dir
from tests.factories import make_member, make_partner
from tests.interleave import Pause, overlap

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
UTC = timezone.utc


def _publish_all(network) -> dict:
    published = {"cycles": [], "months": []}
    while (written := publish_due(network))["cycles"] or written["months"]:
        published = {key: published[key] + written[key] for key in published}
    return published


def test_a_write_in_flight_at_midnight_into_a_quiet_last_day_is_in_its_month(network, clock, monkeypatch):
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    member = make_member(network, coffee)
    network.earn(coffee, member, "c1", points=500)  # 2026-11-20
    clock.set(datetime(2026, 11, 30, 15, 59, 59, 500_000, tzinfo=UTC))  # 23:59:59.5 on the 30th in Shanghai
    while network.settle_due():  # the 20th to the 29th
        pass
    assert _publish_all(network)["months"] == []
    pause = Pause().after(monkeypatch, posting_module, "enter_open_cycle")

    def publish_after_midnight():
        clock.set(datetime(2026, 11, 30, 16, 0, 1, tzinfo=UTC))  # 00:00:01 on 1 December
        return publish_due(network)

    both = overlap(lambda: network.post(coffee, [Event("earn", "c2", member, points=700)]),
                   publish_after_midnight, pause)
    [earned] = both.first
    assert earned["points"] == 700
    assert both.second["months"] == []  # the 30th is not settled: its write was still in flight
    clock.set(datetime(2026, 11, 30, 17, 0, tzinfo=UTC))  # past the 30th's grace
    while network.settle_due():
        pass
    assert _publish_all(network) == {"cycles": ["2026-11-30"], "months": ["2026-11"]}
    root = reports_dir(network)
    month = json.loads((root / "monthly" / "2026-11" / "network.json").read_text())
    day = json.loads((root / "cycles" / "2026-11-30" / "network.json").read_text())
    assert month["totals"]["issued"] == 1200 and day["totals"]["issued"] == 700
    assert month["unsettled_cycles"] == []
