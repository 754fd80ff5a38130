"""The dashboard's partner-log upload refuses a line whose time is not an RFC 3339 instant with 422
naming the line: the time left out, an unquoted ``1,234.50`` fills the time field and is never read
as an amount of 1 (test_reconcile_log_time.py has the same on the command line)."""

from __future__ import annotations

from tests.dashboard import conftest as dashboard
from tests.dashboard import test_ledger_settlement as ledger_settlement
from tests.dashboard.test_ledger_settlement import partner_log, reconcile

client_as, partners, quick_password_hashing = dashboard.client_as, dashboard.partners, dashboard.quick_password_hashing
settings, staff, settled = dashboard.settings, dashboard.staff, ledger_settlement.settled


def test_an_uploaded_line_whose_time_is_an_amounts_fragment_is_refused_422_with_its_line(client_as, network,
                                                                                        settled):
    client = client_as("finance")
    client._transport.raise_server_exceptions = False  # what a browser gets
    log = partner_log([("book-1", "burn", 300, "285", "2026-11-20T02:05:00Z")]) + b"book-2,burn,600,1,234.50\n"
    answer = reconcile(client, settled["book"], log)
    assert answer.status_code == 422, answer.status_code
    assert "invalid_partner_log" in answer.text and "partner log line 3: time: &#39;234.50&#39; is not an RFC 3339" \
        in answer.text, answer.text[-800:]
