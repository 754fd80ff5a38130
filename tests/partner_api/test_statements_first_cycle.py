"""A settlement of a day before the network's first cycle (a "stray" one: a typo run by hand, or a day
an older merge, erasure or buy-out left a ``cycles`` row for, settled by an earlier release) is no
cycle of the network. ``GET /v1/statements`` and a cycle's statement leave it out, as ``pointsnet
clearing list`` and the dashboard do."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import insert

from shared.models import Settlement
from shared.settlement import runs
from tests.partner_api.conftest import Partner, assert_problem
from tests.partner_api.test_statements import settled_days

STRAY = date(2016, 11, 20)


def stray_settlement(network, monkeypatch, party: str, copy_from: date) -> None:
    """What an earlier release left: a settled run of STRAY with a settlement and statement for ``party``."""
    with monkeypatch.context() as old_release:
        old_release.setattr(runs, "first_cycle", lambda tx: STRAY)
        done = network.settle(STRAY)
    name = f"statement-{party}.csv"
    shutil.copy(network.settings.data_dir / "settlements" / copy_from.isoformat() / name,
                Path(done["directory"]) / name)
    network.tx(lambda tx: tx.session.execute(insert(Settlement.__table__).values(
        cycle_date=STRAY, party=party, net_minor=-7, from_float_minor=0, payment_date=STRAY + timedelta(days=1),
        status="due")))


def test_statements_start_at_the_first_cycle(network, clock, shop, api, monkeypatch):
    other = Partner(network, api)
    cycles = settled_days(network, clock, shop, other, 2)
    stray_settlement(network, monkeypatch, shop.partner_id, cycles[0])
    listed = shop.ok("GET", "/v1/statements")
    assert [s["cycle_date"] for s in listed["statements"]] == [c.isoformat() for c in reversed(cycles)]
    first = shop.ok("GET", "/v1/statements", params={"limit": 1})
    after = shop.ok("GET", "/v1/statements", params={"limit": 1, "cursor": first["next_cursor"]})
    assert [s["cycle_date"] for s in after["statements"]] == [cycles[0].isoformat()] and after["next_cursor"] is None
    for path in (f"/v1/statements/{STRAY}", f"/v1/statements/{STRAY}/statement.csv"):
        assert_problem(shop.call("GET", path), 404, "statement_not_found")
    assert shop.ok("GET", f"/v1/statements/{cycles[0]}")["cycle_date"] == cycles[0].isoformat()
