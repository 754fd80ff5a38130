"""The dashboard's Verify page and partner-log upload on a cycle settled before `pointsnet keys
rotate-signing`: its manifest, signed by the retired key, still verifies (test_signing_key_rotation.py
has the same on the command line)."""

from __future__ import annotations

from tests.cli.inprocess import pointsnet
from tests.dashboard import conftest as dashboard
from tests.dashboard import test_ledger_settlement as ledger_settlement
from tests.dashboard.conftest import BASE, post_form
from tests.dashboard.test_ledger_settlement import CYCLE, partner_log, reconcile

client_as, partners, quick_password_hashing = dashboard.client_as, dashboard.partners, dashboard.quick_password_hashing
settings, staff, settled = dashboard.settings, dashboard.staff, ledger_settlement.settled


def test_a_cycle_settled_before_a_rotation_verifies_and_reconciles_after(client_as, network, settled, database_url):
    done = pointsnet("keys", "rotate-signing", env={"POINTSNET_DATA_DIR": str(network.settings.data_dir),
                                                    "POINTSNET_DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr
    network.__dict__.pop("signing_key", None)  # the dashboard restarted: it signs with the new key
    client = client_as("finance")
    answer = post_form(client, f"{BASE}/settlement/{CYCLE}/verify", page=f"{BASE}/settlement/{CYCLE}")
    assert answer.status_code == 200 and 'data-ok="true"' in answer.text, answer.text[-800:]
    clean = reconcile(client, settled["book"], partner_log([("book-1", "burn", 300, "300.000000", "2026-11-20T02:05:00Z")]))
    assert clean.status_code == 200 and 'data-breaks="0"' in clean.text, clean.text[-800:]
