"""`pointsnet members show` and `pointsnet members status-counts`, run as an operator runs them."""

import json

import pytest

from shared.config import get_settings
from shared.network import Network
from tests.cli.inprocess import environment
from tests.cli.test_commands import pointsnet
from tests.conftest import PG_URL


@pytest.mark.skipif(bool(PG_URL), reason="drives the embedded SQLite database")
def test_members_show_and_status_counts(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    with environment({"POINTSNET_DATA_DIR": str(tmp_path / "data")}):
        n = Network(get_settings())
        p = n.create_partner('Shop')['partner_id']
        member = n.enrol(p, phone='+8613812345678')['member_id']
        n.earn(p, member, 'e1', points=1200)
        duplicate = n.enrol(p, phone='+8613812345679')['member_id']
        n.earn(p, duplicate, 'e2', points=30)
        n.close()
    shown = json.loads(pointsnet(tmp_path, "members", "show", member, "--json", check=True).stdout)
    assert shown["balance"] == {"available": 1200, "held": 0}
    assert shown["tier"]["tier"] == "silver" and shown["tier"]["qualifying_points"] == 1200  # default ladder
    assert [(h["from"], h["to"], h["reason"]) for h in shown["tier_history"]] == [("regular", "silver", "qualified")]
    assert shown["activity_status"] == "active"
    text = pointsnet(tmp_path, "members", "show", member, check=True).stdout
    assert "silver" in text and "1200 available" in text
    counts = json.loads(pointsnet(tmp_path, "members", "status-counts", check=True).stdout)
    assert counts == {"active": 2, "at_risk": 0, "dormant": 0}
    merged = json.loads(pointsnet(tmp_path, "members", "merge", member, duplicate, "--reason", "dup",
                                  check=True).stdout)
    assert merged["balance"] == {"available": 1230, "held": 0} and merged["lots"] == 1
    assert json.loads(pointsnet(tmp_path, "members", "status-counts", check=True).stdout)["active"] == 1
    assert pointsnet(tmp_path, "verify").returncode == 0
    unknown = pointsnet(tmp_path, "members", "show", "mbr_nope")
    assert unknown.returncode != 0 and "no member" in unknown.stderr
