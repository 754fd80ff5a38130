"""``pointsnet clearing list`` piped (standard output not a terminal) prints whole cells, never
``2026-1…``, and ``--json`` gives the same fields as a list of objects, full values."""

from __future__ import annotations

import json
from datetime import date

import pytest

from shared.settlement.finance import record_payment
from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.factories import make_member, make_partner

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
CYCLE = date(2026, 11, 20)


@pytest.fixture
def settled(network, clock, database_url):
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    book = make_partner(network, "BookMart", **TERMS)
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "coffee-1", points=500)
    network.burn(book, member, "book-1", 200)
    clock.advance(days=4)  # the payment date (Monday 2026-11-23) has passed: due ones are overdue
    network.settle(CYCLE)
    network.tx(lambda tx: record_payment(tx, CYCLE, book, "BANK-REFERENCE-2026-11-23-000000000001"))
    return {"coffee": coffee, "book": book,
            "env": {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
                    "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z"), "COLUMNS": None}}


def test_piped_the_table_keeps_whole_values(settled):
    done = run_pointsnet("clearing", "list", env=settled["env"])
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout, done.stdout
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in done.stdout.splitlines() if "│" in line]
    rows = {row[1]: row for row in rows if row and row[0] == CYCLE.isoformat()}
    assert set(rows) == {settled["coffee"], settled["book"], "network"}, done.stdout
    assert rows[settled["book"]][5:] == ["190", "0", "2026-11-23", "received",
                                         "BANK-REFERENCE-2026-11-23-000000000001"]  # paid, outstanding, …
    assert rows[settled["coffee"]][5:7] == ["0", "250"] and rows[settled["coffee"]][8] == "overdue"


def test_json_lists_the_table_fields(settled):
    done = run_pointsnet("clearing", "list", "--json", env=settled["env"])
    assert done.returncode == 0, done.stderr
    listed = {row["party"]: row for row in json.loads(done.stdout)}
    assert set(listed) == {settled["coffee"], settled["book"], "network"}
    assert listed[settled["book"]] == {
        "cycle_date": "2026-11-20", "party": settled["book"], "net_minor": 190, "from_float_minor": 0,
        "by_bank_minor": 190, "paid_minor": 190, "outstanding_minor": 0, "payment_date": "2026-11-23",
        "status": "received", "overdue": False,
        "bank_reference": "BANK-REFERENCE-2026-11-23-000000000001"}
    assert listed[settled["coffee"]]["status"] == "due" and listed[settled["coffee"]]["overdue"] is True
    assert listed[settled["coffee"]]["bank_reference"] is None
