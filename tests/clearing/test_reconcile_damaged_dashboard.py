"""The dashboard's Verify page on a damaged settlement directory and its partner-log upload on a log
that is not exact: a difference on the page, or a 422 naming the line — never a 500
(test_reconcile_damaged.py has the same on the command line)."""

from __future__ import annotations

import pytest

from tests.dashboard import conftest as dashboard
from tests.dashboard import test_ledger_settlement as ledger_settlement
from tests.dashboard.conftest import BASE, post_form
from tests.dashboard.test_ledger_settlement import CYCLE, partner_log, reconcile

# the dashboard's fixtures, and the settled cycle of its Settlement tests (BookMart nets 285 for book-1)
client_as, partners, quick_password_hashing = dashboard.client_as, dashboard.partners, dashboard.quick_password_hashing
settings, staff, settled = dashboard.settings, dashboard.staff, ledger_settlement.settled


def directory_of(network):
    return network.settings.data_dir / "settlements" / CYCLE.isoformat()


def test_the_verify_page_reports_a_malformed_amount_as_a_difference_not_a_500(client_as, network, settled):
    client = client_as("finance")
    client._transport.raise_server_exceptions = False  # what a browser gets
    statement = next(directory_of(network).glob(f"statement-{settled['book']}.csv"))
    statement.write_text(statement.read_text().replace(".000000", ".OOOOOO", 1))
    answer = post_form(client, f"{BASE}/settlement/{CYCLE}/verify", page=f"{BASE}/settlement/{CYCLE}")
    assert answer.status_code == 200 and 'data-ok="false"' in answer.text, answer.status_code
    assert statement.name in answer.text


def test_the_verify_page_reports_a_manifest_that_is_not_json(client_as, network, settled):
    client = client_as("finance")
    client._transport.raise_server_exceptions = False
    (directory_of(network) / "manifest.json").write_text("{not json")
    answer = post_form(client, f"{BASE}/settlement/{CYCLE}/verify", page=f"{BASE}/settlement/{CYCLE}")
    assert answer.status_code == 200 and 'data-ok="false"' in answer.text, answer.status_code


@pytest.mark.parametrize("amount", ["Infinity", "NaN", "190.0000009"])
def test_a_partner_log_amount_that_is_not_exact_is_refused_422_with_its_line(client_as, network, settled, amount):
    client = client_as("finance")
    client._transport.raise_server_exceptions = False  # what a browser gets
    answer = reconcile(client, settled["book"], partner_log([("book-1", "burn", 300, amount, "2026-11-20T02:05:00Z")]))
    assert answer.status_code == 422, answer.status_code
    assert "invalid_partner_log" in answer.text and "partner log line 2" in answer.text


def test_an_uploaded_log_line_with_fewer_fields_than_the_header_is_refused_422_with_its_line(client_as, network,
                                                                                            settled):
    client = client_as("finance")
    client._transport.raise_server_exceptions = False
    log = partner_log([("book-1", "burn", 300, "285", "2026-11-20T02:05:00Z")]) + b"book-2,burn,600\n"
    answer = reconcile(client, settled["book"], log)
    assert answer.status_code == 422, answer.status_code
    assert "invalid_partner_log" in answer.text and "partner log line 3: too few fields" in answer.text


def test_an_uploaded_log_line_with_more_fields_than_the_header_is_refused_422_with_its_line(client_as, network,
                                                                                           settled):
    client = client_as("finance")
    client._transport.raise_server_exceptions = False
    log = partner_log([("book-1", "burn", 300, "285", "2026-11-20T02:05:00Z")]) + \
        b"book-2,burn,600,1,234.50,2026-11-20T02:05:00Z\n"
    answer = reconcile(client, settled["book"], log)
    assert answer.status_code == 422, answer.status_code
    assert "invalid_partner_log" in answer.text and "partner log line 3: too many fields" in answer.text


def test_the_verify_page_reports_a_listed_name_too_long_to_look_up(client_as, network, settled):
    import json

    name = "statement-" + "x" * 300 + ".csv"
    path = directory_of(network) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"].append({"name": name, "sha256": "0" * 64, "records": 1})
    path.write_text(json.dumps(manifest))
    client = client_as("finance")
    client._transport.raise_server_exceptions = False
    answer = post_form(client, f"{BASE}/settlement/{CYCLE}/verify", page=f"{BASE}/settlement/{CYCLE}")
    assert answer.status_code == 200 and 'data-ok="false"' in answer.text, answer.status_code
    assert name in answer.text


def test_a_reference_twice_in_an_uploaded_log_is_a_break(client_as, network, settled):
    client = client_as("finance")
    answer = reconcile(client, settled["book"], partner_log([("book-1", "burn", 300, "100", "2026-11-20T02:05:00Z"),
                                                             ("book-1", "burn", 300, "285", "2026-11-20T02:06:00Z")]))
    assert answer.status_code == 200
    assert 'data-reference="book-1" data-break="duplicate_on_partner"' in answer.text and 'data-breaks="1"' in answer.text


# -- the upload is matched only against the statement the network signed, read from the run's directory --

def tamper_statement(network, settled):
    statement = directory_of(network) / f"statement-{settled['book']}.csv"
    text = statement.read_text()
    assert ",300.000000," in text
    statement.write_text(text.replace(",300.000000,", ",1300.000000,"))


def test_an_upload_against_a_tampered_statement_is_refused_409(client_as, network, settled):
    tamper_statement(network, settled)
    client = client_as("finance")
    client._transport.raise_server_exceptions = False
    answer = reconcile(client, settled["book"], partner_log([("book-1", "burn", 300, "1285", "2026-11-20T02:05:00Z")]))
    assert answer.status_code == 409, answer.status_code
    assert "statement_not_verified" in answer.text and "SHA-256" in answer.text
    assert 'data-breaks="0"' not in answer.text


def test_an_upload_against_a_manifest_that_is_not_the_runs_is_refused_409(client_as, network, settled):
    """A manifest re-signed with the network's key (as an older run's would be) but not the one the run
    recorded is not this run's."""
    import hashlib
    import json

    from shared.settlement.runs import sign_manifest

    tamper_statement(network, settled)
    directory = directory_of(network)
    statement = directory / f"statement-{settled['book']}.csv"
    manifest = json.loads((directory / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["name"] == statement.name:
            entry["sha256"] = hashlib.sha256(statement.read_bytes()).hexdigest()
    content = json.dumps(manifest).encode()
    (directory / "manifest.json").write_bytes(content)
    (directory / "manifest.json.sig").write_bytes(sign_manifest(content, network.signing_key))
    client = client_as("finance")
    client._transport.raise_server_exceptions = False
    answer = reconcile(client, settled["book"], partner_log([("book-1", "burn", 300, "1285", "2026-11-20T02:05:00Z")]))
    assert answer.status_code == 409 and "statement_not_verified" in answer.text, answer.status_code


def test_an_upload_with_a_byte_order_mark_is_read(client_as, network, settled):
    client = client_as("finance")
    log = b"\xef\xbb\xbf" + partner_log([("book-1", "burn", 300, "300.000000", "2026-11-20T02:05:00Z")])
    answer = reconcile(client, settled["book"], log)
    assert answer.status_code == 200 and 'data-breaks="0"' in answer.text, answer.text[-2000:]
