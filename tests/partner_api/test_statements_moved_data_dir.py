"""A settled cycle's statement is served from the data directory in force now: a run row that stored
the path of a data directory moved since (settlement_runs.directory) does not turn it into a 404."""

from __future__ import annotations

import shutil

from sqlalchemy import update

from shared.models import SettlementRun
from tests.partner_api.conftest import Partner
from tests.partner_api.test_statements import settled_days


def test_a_statement_is_served_after_the_data_directory_moved(network, clock, shop, api):
    other = Partner(network, api)
    (cycle,) = settled_days(network, clock, shop, other, 1)
    network.tx(lambda tx: tx.session.execute(update(SettlementRun).values(
        directory=f"/srv/old-data/settlements/{cycle.isoformat()}")))
    assert shop.ok("GET", f"/v1/statements/{cycle}")["cycle_date"] == cycle.isoformat()
    response = shop.call("GET", f"/v1/statements/{cycle}/statement.csv")
    assert response.status_code == 200 and response.text.startswith("record_type,"), response.text


def test_a_settled_statement_whose_file_is_lost_is_unavailable_not_unknown(network, clock, shop, api):
    """The cycle is listed as settled; its file, lost with its directory, is 503 statement_unavailable until
    the operators write it again (`pointsnet clearing run --cycle D`), never 404 "no such statement"."""
    other = Partner(network, api)
    (cycle,) = settled_days(network, clock, shop, other, 1)
    shutil.rmtree(network.settings.data_dir / "settlements" / cycle.isoformat())
    assert cycle.isoformat() in [row["cycle_date"] for row in shop.ok("GET", "/v1/statements")["statements"]]
    for path in (f"/v1/statements/{cycle}", f"/v1/statements/{cycle}/statement.csv"):
        answer = shop.call("GET", path)
        assert answer.status_code == 503 and answer.json()["code"] == "statement_unavailable", answer.text
    network.settle(cycle)  # written again from the ledger
    assert shop.ok("GET", f"/v1/statements/{cycle}")["cycle_date"] == cycle.isoformat()
