"""A settlement of a day before the network's first cycle (a "stray" one an earlier release made: a
typo run by hand, or a day an older merge, erasure or buy-out left a ``cycles`` row for) is no cycle
of the network. As the runs list and ``pointsnet clearing list`` leave it out, so do a party's
statements page (and /my-partner) and the run's own pages: the cycle, its files, its verification and
reconciliation are 404."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from shared.models import Settlement
from shared.settlement import positions, runs as settlement_runs
from tests.dashboard.conftest import BASE, post_form
from tests.dashboard import test_ledger_settlement as ledger_settlement
from tests.dashboard.test_ledger_settlement import CYCLE

settled = ledger_settlement.settled  # the settled cycle of the dashboard's Settlement tests

STRAY = date(2016, 11, 20)


@pytest.fixture
def stray(network, settled, monkeypatch):
    """What an earlier release left: a settled run of STRAY with a settlement and statement for CoffeeCo."""
    coffee = settled["coffee"]
    with monkeypatch.context() as old_release:
        old_release.setattr(settlement_runs, "first_cycle", lambda tx: STRAY)
        done = network.settle(STRAY)
    name = f"statement-{coffee}.csv"
    shutil.copy(network.settings.data_dir / "settlements" / CYCLE.isoformat() / name, Path(done["directory"]) / name)
    network.tx(lambda tx: tx.session.execute(insert(Settlement.__table__).values(
        cycle_date=STRAY, party=coffee, net_minor=-7, from_float_minor=0, payment_date=STRAY + timedelta(days=1),
        status="due")))
    return coffee


def test_a_partys_statements_start_at_the_first_cycle(client_as, network, stray):
    rows, total = network.tx(lambda tx: positions.party_statements_page(tx, stray), readonly=True)
    assert [row["cycle_date"] for row in rows] == [CYCLE] and total == 1
    for client, path in ((client_as("finance"), f"/settlement/parties/{stray}"), (client_as("viewer"), "/my-partner")):
        page = client.get(f"{BASE}{path}")
        assert page.status_code == 200, page.text
        assert f'data-cycle="{CYCLE}"' in page.text and f'data-cycle="{STRAY}"' not in page.text


def test_a_stray_runs_own_pages_are_not_found(client_as, network, stray):
    client = client_as("finance")
    for path in (f"/settlement/{STRAY}", f"/settlement/{STRAY}?tab=matrix", f"/settlement/{STRAY}/reconcile",
                 f"/settlement/{STRAY}/files/manifest.json", f"/settlement/{STRAY}/files/statement-{stray}.csv"):
        assert client.get(f"{BASE}{path}").status_code == 404, path
    assert client_as("viewer").get(f"{BASE}/settlement/{STRAY}/files/statement-{stray}.csv").status_code == 404
    assert post_form(client, f"{BASE}/settlement/{STRAY}/verify").status_code == 404
    assert post_form(client, f"{BASE}/settlement/{STRAY}/parties/{stray}/paid",
                     {"bank_reference": "B-1"}).status_code == 404
    assert client.get(f"{BASE}/settlement/{CYCLE}").status_code == 200
