"""docs/operations.md: `webhooks deliveries` lists a cancelled delivery as `cancelled` with why, and
`webhooks replay` refuses it, and a message about a member the partner no longer has, in one line."""

from __future__ import annotations

import json

import pytest

from shared.config import get_settings
from shared.network import Network
from tests.cli.inprocess import environment
from tests.conftest import PG_URL
from tests.webhooks.test_cli import T0, run

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="drives the embedded SQLite database")


def test_a_cancelled_delivery_is_listed_and_replays_are_refused_in_one_line(tmp_path):
    assert run(tmp_path, "db", "upgrade").returncode == 0
    shop = json.loads(run(tmp_path, "partners", "add", "Shop").stdout)["partner_id"]
    run(tmp_path, "webhooks", "set", shop, "--url", "http://127.0.0.1:9/hooks")  # nothing listens: retried
    with environment({"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_CLOCK": T0,
                      "POINTSNET_DATABASE_URL": None}):
        n = Network(get_settings())
        member = n.enrol(shop, phone="+8613812345678")["member_id"]
        n.earn(shop, member, "e1", points=50)
        n.close()
    [earned] = json.loads(run(tmp_path, "webhooks", "deliveries", "--json").stdout)
    run(tmp_path, "members", "unlink", member, shop)
    rows = {row["event_type"]: row for row in json.loads(run(tmp_path, "webhooks", "deliveries", "--json").stdout)}
    assert rows["points.earned"]["status"] == "cancelled" and rows["points.earned"]["next_attempt_at"] is None
    assert "withdrew its consent" in rows["points.earned"]["last_error"]
    assert rows["member.unlinked"]["status"] == "pending"
    listed = run(tmp_path, "webhooks", "deliveries").stdout
    assert "cancelled" in listed
    refused = run(tmp_path, "webhooks", "replay", earned["delivery_id"], check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-400:]
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith("error: delivery_cancelled: "), refused.stderr
    after = {row["event_type"]: row for row in json.loads(run(tmp_path, "webhooks", "deliveries", "--json").stdout)}
    assert after == rows  # nothing changed
