"""Ledger, Settlement, Reports and My-partner pages over HTTP: what each role may see and do, CSRF,
audit entries, maker-checker on "mark paid", and a partner viewer's isolation (pages and files)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from shared.models import AuditEntry, Settlement
from tests.dashboard.conftest import BASE, csrf_of, post_form
from tests.factories import make_member

CYCLE = date(2026, 11, 20)
ORIGIN = {"origin": "http://testserver"}


@pytest.fixture
def settled(network, clock, partners):
    """CoffeeCo issues 500 points, the member spends 300 at BookMart; the cycle is settled."""
    coffee, book = partners["CoffeeCo"], partners["BookMart"]
    member = make_member(network, coffee, also_linked_to=(book,))
    earn = network.earn(coffee, member, "coffee-1", points=500)
    clock.advance(minutes=5)
    burn = network.burn(book, member, "book-1", 300)
    clock.advance(days=1)
    network.settle(CYCLE)
    return {"coffee": coffee, "book": book, "member": member, "earn": earn, "burn": burn}


def audit_actions(network, action: str) -> list[dict]:
    rows = network.tx(lambda tx: tx.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                                    .order_by(AuditEntry.id)).all(), readonly=True)
    return [{"user": r.user_email, "target": r.target, "detail": json.loads(r.detail)} for r in rows]


def settlement_row(network, party: str) -> Settlement:
    return network.tx(lambda tx: tx.session.get(Settlement, (CYCLE, party)), readonly=True)


def transaction_id(result: dict) -> str:
    return result["entry_id"]


# -- ledger ------------------------------------------------------------------------------------------
def test_explorer_filters_in_sql_and_pages(client_as, settled):
    client = client_as("finance")
    page = client.get(f"{BASE}/ledger")
    assert page.status_code == 200
    assert "coffee-1" in page.text and "book-1" in page.text
    only_burns = client.get(f"{BASE}/ledger", params={"kind": "burn"}).text
    assert "book-1" in only_burns and "coffee-1" not in only_burns
    by_partner = client.get(f"{BASE}/ledger", params={"partner": settled["coffee"]}).text
    assert "coffee-1" in by_partner and "book-1" not in by_partner
    by_reference = client.get(f"{BASE}/ledger", params={"reference": "book-1"}).text
    assert "book-1" in by_reference and "coffee-1" not in by_reference
    by_member = client.get(f"{BASE}/ledger", params={"member": settled["member"]}).text
    assert "book-1" in by_member and "coffee-1" in by_member
    later = client.get(f"{BASE}/ledger", params={"from": "2026-11-21"}).text
    assert "book-1" not in later and "coffee-1" not in later
    first_page = client.get(f"{BASE}/ledger", params={"limit": 1}).text
    assert first_page.count("data-entry=") == 1 and 'rel="next"' in first_page
    assert client.get(f"{BASE}/ledger", params={"from": "yesterday"}).status_code == 422
    assert client.get(f"{BASE}/ledger", params={"from": "20261121"}).status_code == 422  # YYYY-MM-DD only


def test_explorer_counts_only_so_far_past_the_page(network, settled):
    from shared.ledger.explorer import EntryFilter, entries_page

    rows, total, more = network.tx(lambda tx: entries_page(tx, EntryFilter(), limit=1, count_up_to=1), readonly=True)
    assert (len(rows), total, more) == (1, 1, True)
    rows, total, more = network.tx(lambda tx: entries_page(tx, EntryFilter(), limit=1), readonly=True)
    assert (len(rows), total, more) == (1, 2, False)


def test_entry_detail_shows_postings_consumptions_lines_and_proof(client_as, network, settled):
    client = client_as("operator")
    entry_id = transaction_id(settled["burn"])
    page = client.get(f"{BASE}/ledger/entries/{entry_id}").text
    assert f"member:{settled['member']}" in page
    assert 'data-testid="consumptions"' in page and "redemption" in page
    assert "300.000000" in page  # the exact amount of the redemption line
    # settlement signed a checkpoint at cut-off that holds the entry: its inclusion proof verifies
    assert 'data-state="verified"' in page
    assert client.get(f"{BASE}/ledger/entries/ent_nope").status_code == 404


def test_entry_not_yet_checkpointed_says_so(client_as, network, partners):
    member = make_member(network, partners["CoffeeCo"])
    result = network.earn(partners["CoffeeCo"], member, "fresh-1", points=10)
    client = client_as("operator")
    assert 'data-state="unsealed"' in client.get(f"{BASE}/ledger/entries/{transaction_id(result)}").text
    network.checkpoint()
    assert 'data-state="verified"' in client.get(f"{BASE}/ledger/entries/{transaction_id(result)}").text


def test_integrity_check_runs_on_demand_and_is_audited(client_as, network, settled):
    client = client_as("finance")
    page = client.get(f"{BASE}/ledger/integrity")
    assert page.status_code == 200 and 'data-testid="tree-size"' in page.text
    answer = client.post(f"{BASE}/ledger/integrity", data={"csrf_token": csrf_of(page.text)}, headers=ORIGIN)
    assert answer.status_code == 200
    assert 'data-ok="true"' in answer.text
    assert [a["detail"]["ok"] for a in audit_actions(network, "ledger.verify")] == [True]
    assert audit_actions(network, "ledger.verify")[0]["user"] == "fin@example.org"


def test_a_tampered_entry_fails_its_proof_and_the_integrity_check(client_as, network, settled):
    entry_id = transaction_id(settled["earn"])
    network.tx(lambda tx: tx.session.execute(text("UPDATE transfers SET points = points + 100 WHERE entry_id = :e"),
                                             {"e": entry_id}))
    client = client_as("operator")
    assert 'data-state="mismatch"' in client.get(f"{BASE}/ledger/entries/{entry_id}").text
    answer = post_form(client, f"{BASE}/ledger/integrity", page=f"{BASE}/ledger/integrity")
    assert 'data-ok="false"' in answer.text
    assert 'data-check="leaf_hash_mismatch" data-offences="1"' in answer.text and entry_id in answer.text
    assert audit_actions(network, "ledger.verify")[0]["detail"]["ok"] is False


def test_integrity_check_refuses_a_form_without_csrf_token(client_as, network, settled):
    client = client_as("operator")
    answer = client.post(f"{BASE}/ledger/integrity", data={"csrf_token": "forged"}, headers=ORIGIN)
    assert answer.status_code == 403 and 'data-code="csrf_rejected"' in answer.text
    assert client.post(f"{BASE}/ledger/integrity", data={}, headers=ORIGIN).status_code == 403
    assert audit_actions(network, "ledger.verify") == []


def test_ledger_is_not_for_partner_viewers(client_as, settled):
    viewer = client_as("viewer")
    for path in ("/ledger", f"/ledger/entries/{transaction_id(settled['earn'])}", "/ledger/integrity"):
        answer = viewer.get(BASE + path)
        assert answer.status_code == 403, path
    answer = post_form(viewer, f"{BASE}/ledger/integrity", page=f"{BASE}/my-partner")
    assert answer.status_code == 403


# -- settlement ----------------------------------------------------------------------------------------
def test_runs_and_cycle_page_show_positions_and_matrix(client_as, settled):
    client = client_as("finance")
    runs = client.get(f"{BASE}/settlement").text
    assert f'data-cycle="{CYCLE}"' in runs and 'data-status="due"' in runs
    cycle = client.get(f"{BASE}/settlement/{CYCLE}").text
    assert f'data-party="{settled["coffee"]}" data-status="due"' in cycle
    assert 'data-minor="-300"' in cycle and 'data-minor="300"' in cycle
    assert 'id="positions-chart"' in cycle
    matrix = client.get(f"{BASE}/settlement/{CYCLE}", params={"tab": "matrix"}).text
    assert f'data-payer="{settled["coffee"]}" data-payee="{settled["book"]}" data-kind="redemption"' in matrix
    chart = json.loads(matrix.split('id="matrix-chart-data">', 1)[1].split("</script>", 1)[0])
    assert chart == {"labels": ["CoffeeCo → BookMart"], "datasets": [{"label": "redemption", "data": ["3.00"]}],
                     "axes": {"x": "Payer → payee", "y": "Amount (CNY)"},
                     "money": {"symbol": "¥", "code": "CNY", "digits": 2}}  # yuan, as the table's money
    assert client.get(f"{BASE}/settlement/2026-11-19").status_code == 404
    assert client.get(f"{BASE}/settlement/not-a-date").status_code == 422


def test_the_runs_list_shows_no_stray_run_before_the_first_cycle(client_as, network, settled, monkeypatch):
    """A settlement an earlier release made of a day before the network's first cycle (a typo run by
    hand) is no cycle of the network: the runs list, its count and pages show the real cycles only, as
    `clearing list` does."""
    from shared.settlement import positions, runs as settlement_runs

    stray = date(2016, 11, 20)
    with monkeypatch.context() as old_release:  # what `clearing run --cycle 2016-11-20` did before
        old_release.setattr(settlement_runs, "first_cycle", lambda tx: stray)
        network.settle(stray)
    rows, total = network.tx(lambda tx: positions.runs_page(tx, CYCLE + timedelta(days=1)), readonly=True)
    assert [row["cycle_date"] for row in rows] == [CYCLE] and total == 1
    page = client_as("finance").get(f"{BASE}/settlement").text
    assert f'data-cycle="{CYCLE}"' in page and f'data-cycle="{stray}"' not in page


def test_files_download_from_the_run_directory_only(client_as, network, settled):
    client = client_as("finance")
    directory = network.settings.data_dir / "settlements" / CYCLE.isoformat()
    for name in ("manifest.json", "manifest.json.sig", "bilateral.csv", "network-summary.csv",
                 f"statement-{settled['book']}.csv"):
        answer = client.get(f"{BASE}/settlement/{CYCLE}/files/{name}")
        assert answer.status_code == 200, name
        assert answer.content == (directory / name).read_bytes()
        assert "attachment" in answer.headers["content-disposition"]
    (network.settings.data_dir / "secret.txt").write_text("not a settlement file")
    for name in ("..%2F..%2Fsecret.txt", "..%2Fsecret.txt", "statement-..%2F..%2Fsecret.txt", "%2E%2E", "%2E",
                 "statement-network.csv", "statement-nobody.csv", "manifest.json.bak", "%2Fetc%2Fpasswd"):
        answer = client.get(f"{BASE}/settlement/{CYCLE}/files/{name}")
        assert answer.status_code in (404, 422), (name, answer.status_code)
        assert b"not a settlement file" not in answer.content


def test_mark_paid_needs_a_second_operator(client_as, network, settled):
    coffee = settled["coffee"]
    finance = client_as("finance")
    page = f"{BASE}/settlement/{CYCLE}"
    answer = post_form(finance, f"{BASE}/settlement/{CYCLE}/parties/{coffee}/paid",
                       {"bank_reference": "BANK-123"}, page=page)
    assert answer.status_code == 303 and "message=requested" in answer.headers["location"]
    assert settlement_row(network, coffee).status == "due"  # not yet: waiting for the checker
    assert 'data-testid="pending"' in finance.get(page).text
    requested = audit_actions(network, "approval.requested")
    assert requested[0]["target"] == f"{CYCLE}/{coffee}" and requested[0]["user"] == "fin@example.org"

    checker = client_as("checker")
    approvals = checker.get(f"{BASE}/approvals").text
    pending_id = int(approvals.split('data-pending="', 1)[1].split('"', 1)[0])
    decided = post_form(checker, f"{BASE}/approvals/{pending_id}/approve", page=f"{BASE}/approvals")
    assert decided.status_code == 303
    row = settlement_row(network, coffee)
    assert (row.status, row.bank_reference) == ("paid", "BANK-123")  # CoffeeCo pays: paid
    assert [a["user"] for a in audit_actions(network, "settlement_paid")] == ["checker@example.org"]
    # once paid, a second request is refused at once, naming the payment recorded (not "nothing due")
    again = post_form(finance, f"{BASE}/settlement/{CYCLE}/parties/{coffee}/paid",
                      {"bank_reference": "BANK-124"}, page=page)
    assert again.status_code == 409 and 'data-code="already_recorded"' in again.text, again.text
    assert f"the settlement of {coffee} in cycle {CYCLE} is already paid: recorded " in again.text
    assert "with bank reference BANK-123" in again.text
    assert settlement_row(network, coffee).bank_reference == "BANK-123"


def test_mark_paid_runs_at_once_without_four_eyes_and_is_audited(client_as, network, settled):
    network.settings.four_eyes_actions = frozenset()
    book = settled["book"]
    operator = client_as("operator")
    answer = post_form(operator, f"{BASE}/settlement/{CYCLE}/parties/{book}/paid",
                       {"bank_reference": "IN-9"}, page=f"{BASE}/settlement/{CYCLE}")
    assert answer.status_code == 303 and "message=paid" in answer.headers["location"]
    assert settlement_row(network, book).status == "received"  # BookMart is paid: received
    entries = audit_actions(network, "settlement_paid")
    assert entries[0]["user"] == "op@example.org" and entries[0]["detail"]["params"]["bank_reference"] == "IN-9"


def test_mark_paid_refuses_bad_forms_and_roles(client_as, network, settled):
    coffee = settled["coffee"]
    path = f"{BASE}/settlement/{CYCLE}/parties/{coffee}/paid"
    finance = client_as("finance")
    forged = finance.post(path, data={"csrf_token": "nope", "bank_reference": "X"}, headers=ORIGIN)
    assert forged.status_code == 403
    token = csrf_of(finance.get(f"{BASE}/settlement/{CYCLE}").text)
    cross_site = finance.post(path, data={"csrf_token": token, "bank_reference": "X"},
                              headers={"origin": "http://evil.example"})
    assert cross_site.status_code == 403
    blank = post_form(finance, path, {"bank_reference": "  "}, page=f"{BASE}/settlement/{CYCLE}")
    assert blank.status_code == 422
    viewer = client_as("viewer")
    assert post_form(viewer, path, {"bank_reference": "X"}, page=f"{BASE}/my-partner").status_code == 403
    assert settlement_row(network, coffee).status == "due"
    assert audit_actions(network, "approval.requested") == []


def test_a_float_partners_row_shows_what_moves_by_bank_and_its_direction(client_as, network, clock):
    """docs/settlement-files.md, "Finance": net −580, 700 from the float, the network pays it 120 by bank."""
    from shared.partners.limits import record_topup, set_limits
    from shared.settlement import positions
    from tests.factories import make_partner

    terms = dict(point_value="1", issuance_fee="0", redemption_fee_rate="0")
    shop = make_partner(network, "FloatShop", billing="prepaid", **terms)
    issuer = make_partner(network, "Issuer", billing="postpaid", **terms)
    network.tx(lambda tx: set_limits(tx, shop, float_overdraft_minor=0))
    network.tx(lambda tx: record_topup(tx, shop, 1_000, "BANK-TOPUP"))
    member = make_member(network, shop, also_linked_to=(issuer,))
    network.earn(issuer, member, "i1", points=120)
    network.burn(shop, member, "b1", 120)
    network.earn(shop, member, "e1", points=700)
    clock.advance(days=1)
    network.settle(CYCLE)
    finance = client_as("finance")
    page = finance.get(f"{BASE}/settlement/{CYCLE}").text
    row = page.split(f'data-party="{shop}"', 1)[1].split("</tr>", 1)[0]
    assert ' data-status="due"' in row and 'data-minor="-580"' in row
    assert 'data-from-float="700"' in row and 'data-by-bank="120"' in row
    assert "Mark received" in row and "Mark paid" not in row  # the network pays it
    network_row = page.split('data-party="network"', 1)[1].split("</tr>", 1)[0]
    assert ' data-status="nothing_due"' in network_row and 'data-by-bank="0"' in network_row
    assert "bank_reference" not in network_row  # nothing to mark
    statements = finance.get(f"{BASE}/settlement/parties/{shop}").text
    assert 'data-minor="-580"' in statements and 'data-by-bank="120"' in statements
    [run], _ = network.tx(lambda tx: positions.runs_page(tx, CYCLE), readonly=True)
    assert (run["due"], run["nothing_due"], run["volume_minor"]) == (2, 1, 120)  # only the issuer pays by bank
    network.settings.four_eyes_actions = frozenset()
    operator = client_as("operator")
    answer = post_form(operator, f"{BASE}/settlement/{CYCLE}/parties/{shop}/paid",
                       {"bank_reference": "OUT-120"}, page=f"{BASE}/settlement/{CYCLE}")
    assert answer.status_code == 303 and "message=paid" in answer.headers["location"]
    assert settlement_row(network, shop).status == "received"
    nothing = post_form(operator, f"{BASE}/settlement/{CYCLE}/parties/network/paid",
                        {"bank_reference": "NONE"}, page=f"{BASE}/settlement/{CYCLE}")
    assert nothing.status_code == 404 and 'data-code="nothing_due"' in nothing.text


def test_verify_run_reports_reconciled_and_is_audited(client_as, network, settled):
    client = client_as("operator")
    answer = post_form(client, f"{BASE}/settlement/{CYCLE}/verify", page=f"{BASE}/settlement/{CYCLE}")
    assert answer.status_code == 200 and 'data-ok="true"' in answer.text
    directory = network.settings.data_dir / "settlements" / CYCLE.isoformat()
    (directory / "bilateral.csv").write_bytes(b"tampered\n")
    answer = post_form(client, f"{BASE}/settlement/{CYCLE}/verify", page=f"{BASE}/settlement/{CYCLE}")
    assert 'data-ok="false"' in answer.text and "bilateral.csv" in answer.text
    assert [a["detail"]["differences"] > 0 for a in audit_actions(network, "settlement.verify")] == [False, True]


def test_verify_run_names_another_cycles_files_in_the_runs_directory(client_as, network, clock, settled):
    """The next cycle's directory replaced by a copy of this one's genuine files: each file verifies and
    recomputes as this cycle, so "Verify the run's files" said reconciled for the next cycle's run."""
    import shutil

    network.earn(settled["coffee"], settled["member"], "coffee-2", points=70)
    clock.advance(days=1)
    following = CYCLE + timedelta(days=1)
    network.settle(following)
    client = client_as("operator")
    answer = post_form(client, f"{BASE}/settlement/{following}/verify", page=f"{BASE}/settlement/{following}")
    assert 'data-ok="true"' in answer.text and f"Reconciled: cycle {following}:" in answer.text
    settlements = network.settings.data_dir / "settlements"
    shutil.rmtree(settlements / following.isoformat())
    shutil.copytree(settlements / CYCLE.isoformat(), settlements / following.isoformat())
    answer = post_form(client, f"{BASE}/settlement/{following}/verify", page=f"{BASE}/settlement/{following}")
    assert 'data-ok="false"' in answer.text, answer.text
    assert f"the directory {following} holds the manifest of cycle {CYCLE}" in answer.text


def partner_log(rows: list[tuple]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["reference", "kind", "points", "amount", "time"])
    writer.writerows(rows)
    return out.getvalue().encode()


def reconcile(client, partner: str, log: bytes, fmt: str = "html"):
    token = csrf_of(client.get(f"{BASE}/settlement/{CYCLE}/reconcile").text)
    return client.post(f"{BASE}/settlement/{CYCLE}/reconcile", headers=ORIGIN,
                       data={"csrf_token": token, "partner_id": partner, "format": fmt},
                       files={"log": ("bookmart.csv", log, "text/csv")})


def test_reconciliation_shows_breaks_and_gives_them_as_csv(client_as, network, settled):
    book = settled["book"]
    client = client_as("finance")
    log = partner_log([("book-1", "burn", 250, "300.000000", "2026-11-20T02:05:00Z"),
                       ("book-9", "burn", 10, "10", "2026-11-20T03:00:00Z")])
    answer = reconcile(client, book, log)
    assert answer.status_code == 200
    assert 'data-reference="book-1" data-break="points_mismatch"' in answer.text
    assert 'data-reference="book-9" data-break="missing_on_network"' in answer.text
    assert 'data-breaks="2"' in answer.text
    as_csv = reconcile(client, book, log, fmt="csv")
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["reference"], r["break"]) for r in rows] == [("book-1", "points_mismatch"),
                                                            ("book-9", "missing_on_network")]
    clean = reconcile(client, book, partner_log([("book-1", "burn", 300, "300.000000", "2026-11-20T02:05:00Z")]))
    assert 'data-breaks="0"' in clean.text
    runs = audit_actions(network, "settlement.reconcile")
    assert [(r["target"], r["detail"]["breaks"]) for r in runs] == [(f"{CYCLE}/{book}", 2), (f"{CYCLE}/{book}", 2),
                                                                   (f"{CYCLE}/{book}", 0)]


def test_reconciliation_refuses_bad_logs_forms_and_roles(client_as, network, settled):
    client = client_as("operator")
    bad = reconcile(client, settled["book"], b"reference,kind\nbook-1,burn\n")
    assert bad.status_code == 422
    # the form comes back with its party and the reason beside it (docs/dashboard.md, "Refused forms")
    assert 'data-testid="reconcile-form"' in bad.text and 'aria-describedby="reconcile-error"' in bad.text
    assert f'name="partner_id" value="{settled["book"]}"' in bad.text, bad.text
    assert 'id="reconcile-error"' in bad.text and 'data-code="invalid_partner_log"' in bad.text
    not_text = reconcile(client, settled["book"], b"reference,kind,points,amount,time\n\xff\n")
    assert not_text.status_code == 422 and "not UTF-8 text" in not_text.text
    assert f'name="partner_id" value="{settled["book"]}"' in not_text.text
    as_csv = reconcile(client, settled["book"], b"reference,kind\nbook-1,burn\n", fmt="csv")
    assert as_csv.status_code == 422 and as_csv.headers["content-type"].startswith("text/html")
    assert 'data-code="invalid_partner_log"' in as_csv.text
    unknown = reconcile(client, "ptn_nobody", partner_log([]))
    assert unknown.status_code == 404
    assert 'name="partner_id" value="ptn_nobody"' in unknown.text and 'id="reconcile-error"' in unknown.text
    forged = client.post(f"{BASE}/settlement/{CYCLE}/reconcile", headers=ORIGIN,
                         data={"csrf_token": "forged", "partner_id": settled["book"]},
                         files={"log": ("x.csv", partner_log([]), "text/csv")})
    assert forged.status_code == 403
    viewer = client_as("viewer")
    assert viewer.get(f"{BASE}/settlement/{CYCLE}/reconcile").status_code == 403
    assert audit_actions(network, "settlement.reconcile") == []


def test_an_upload_over_2mb_is_refused_also_when_sent_chunked(client_as, network, settled):
    """docs/dashboard.md: uploads are limited to 2 MB — counted as received, not as announced."""
    client = client_as("finance")
    token = csrf_of(client.get(f"{BASE}/settlement/{CYCLE}/reconcile").text)
    boundary = "XyZ"
    log = partner_log([("nope-ref", "earn", 1, "0.01", "2026-11-20T10:00:00Z")] * 80_000)
    assert len(log) > 3 * 1024 * 1024
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="partner_id"\r\n\r\n{settled["coffee"]}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="log"; filename="big.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n").encode() + log + f"\r\n--{boundary}--\r\n".encode()

    def chunks():  # a generator body: sent with Transfer-Encoding: chunked, no Content-Length
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    answer = client.post(f"{BASE}/settlement/{CYCLE}/reconcile", content=chunks(),
                         headers=ORIGIN | {"content-type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 403 and 'data-code="csrf_rejected"' in answer.text
    assert audit_actions(network, "settlement.reconcile") == []


# -- a partner viewer sees its own partner only ----------------------------------------------------------
def test_partner_viewer_sees_own_statements_and_reports_only(client_as, settled):
    coffee, book = settled["coffee"], settled["book"]
    viewer = client_as("viewer")
    mine = viewer.get(f"{BASE}/my-partner")
    assert mine.status_code == 200 and "CoffeeCo" in mine.text and f'data-cycle="{CYCLE}"' in mine.text
    own = viewer.get(f"{BASE}/settlement/{CYCLE}/files/statement-{coffee}.csv")
    assert own.status_code == 200 and coffee in own.text and "book-1" not in own.text
    assert viewer.get(f"{BASE}/reports/partner/{coffee}").status_code == 200
    assert viewer.get(f"{BASE}/reports/partner/{coffee}/download",
                      params={"from": "2026-11-20", "to": "2026-11-20", "format": "csv"}).status_code == 200
    assert viewer.get(f"{BASE}/settlement/parties/{coffee}").status_code == 200
    refused = [
        f"/settlement/{CYCLE}/files/statement-{book}.csv",  # another party's statement
        f"/settlement/{CYCLE}/files/statement-ptn_nobody.csv",  # no existence oracle either
        f"/settlement/{CYCLE}/files/bilateral.csv", f"/settlement/{CYCLE}/files/network-summary.csv",
        f"/settlement/{CYCLE}/files/manifest.json", f"/settlement/{CYCLE}/files/manifest.json.sig",
        f"/settlement/parties/{book}", f"/reports/partner/{book}",
        f"/reports/partner/{book}/download?from=2026-11-20&to=2026-11-20&format=json",
        "/settlement", f"/settlement/{CYCLE}", f"/settlement/{CYCLE}?tab=matrix", "/reports",
        "/reports/network/download?from=2026-11-20&to=2026-11-20&format=json",
    ]
    for path in refused:
        answer = viewer.get(BASE + path)
        assert answer.status_code == 403, path
        assert "BookMart" not in answer.text and "book-1" not in answer.text, path


def test_my_partner_is_the_viewers_page_operators_use_the_party_page(client_as, settled):
    assert client_as("operator").get(f"{BASE}/my-partner").status_code == 403
    finance = client_as("finance")
    page = finance.get(f"{BASE}/settlement/parties/{settled['book']}")
    assert page.status_code == 200 and "BookMart" in page.text
    assert f"statement-{settled['book']}.csv" in page.text
    assert finance.get(f"{BASE}/settlement/parties/ptn_nobody").status_code == 404


# -- reports -------------------------------------------------------------------------------------------
def test_network_report_page_charts_tables_and_downloads(client_as, settled):
    client = client_as("operator")
    page = client.get(f"{BASE}/reports", params={"from": "2026-11-20", "to": "2026-11-21"})
    assert page.status_code == 200
    for chart in ("daily-chart", "flows-chart", "expiry-chart"):
        assert f'id="{chart}"' in page.text
    flows = json.loads(page.text.split('id="flows-chart-data">', 1)[1].split("</script>", 1)[0])
    assert flows == {"labels": ["CoffeeCo"], "datasets": [{"label": "BookMart", "data": [300]}]}
    assert f'data-funder="{settled["coffee"]}" data-redeemer="{settled["book"]}"' in page.text
    assert f'/reports/partner/{settled["coffee"]}?from=2026-11-20&amp;to=2026-11-21' in page.text
    for fmt, media in (("json", "application/json"), ("csv", "text/csv"), ("html", "text/html")):
        answer = client.get(f"{BASE}/reports/network/download",
                            params={"from": "2026-11-20", "to": "2026-11-21", "format": fmt})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(media)
        assert "attachment" in answer.headers["content-disposition"]
    report = client.get(f"{BASE}/reports/network/download",
                        params={"from": "2026-11-20", "to": "2026-11-21", "format": "json"}).json()
    assert report["totals"]["issued"] == 500 and report["totals"]["redeemed"] == 300
    assert client.get(f"{BASE}/reports", params={"from": "2026-11-21", "to": "2026-11-20"}).status_code == 422
    assert client.get(f"{BASE}/reports").status_code == 200  # the last 30 cycles by default


def test_partner_report_page(client_as, settled):
    client = client_as("finance")
    page = client.get(f"{BASE}/reports/partner/{settled['book']}", params={"from": "2026-11-20", "to": "2026-11-20"})
    assert page.status_code == 200 and 'data-testid="partner-name">BookMart' in page.text
    flows = json.loads(page.text.split('id="flows-chart-data">', 1)[1].split("</script>", 1)[0])
    assert flows["labels"] == ["CoffeeCo"] and flows["datasets"][1]["data"] == [300]
    assert 'data-key="points.redeemed_here">300' in page.text
    assert f'data-key="money.cycles.{CYCLE}.reimbursements_received_minor">¥3.00' in page.text
    assert client.get(f"{BASE}/reports/partner/ptn_nobody").status_code == 404


def test_every_page_has_its_labels_in_chinese(client_as, network, settled):
    import re

    raw_key = re.compile(r">\s*(ledger|settlement|reconcile|proof|payment|run|integrity|checkpoint|reports|statements"
                         r"|period|points|totals|series|month)\.[a-z_]+")
    client = client_as("finance")
    assert post_form(client, f"{BASE}/language", {"language": "zh", "next": "/"}).status_code == 303
    pages = ["/ledger", f"/ledger/entries/{transaction_id(settled['burn'])}", "/ledger/integrity", "/settlement",
             f"/settlement/{CYCLE}", f"/settlement/{CYCLE}?tab=matrix", f"/settlement/{CYCLE}/reconcile",
             f"/settlement/parties/{settled['coffee']}", "/reports?from=2026-11-20&to=2026-11-21",
             f"/reports/partner/{settled['coffee']}?from=2026-11-20&to=2026-11-21"]
    for path in pages:
        answer = client.get(BASE + path)
        assert answer.status_code == 200, path
        assert not raw_key.search(answer.text), (path, raw_key.search(answer.text).group(0))
    assert "结算" in client.get(f"{BASE}/settlement/{CYCLE}").text
    viewer = client_as("viewer")
    assert post_form(viewer, f"{BASE}/language", {"language": "zh", "next": "/my-partner"},
                     page=f"{BASE}/my-partner").status_code == 303
    assert "结算对账单" in viewer.get(f"{BASE}/my-partner").text
