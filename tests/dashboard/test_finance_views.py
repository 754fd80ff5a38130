"""The finance views as a finance clerk reads them: charts in the currency's major units with axis
titles, every amount as money, "to pay" or "to receive" by the payment's direction, a payment request
on the Approvals page with its partner's name and amount, grouped point changes on a member's page,
and the reconciliation log's unit said where the log is uploaded."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date
from decimal import Decimal

import pytest

from shared.models import Settlement
from tests.dashboard.conftest import BASE, csrf_of, post_form
from tests.factories import make_member, make_partner

CYCLE = date(2026, 11, 20)
ORIGIN = {"origin": "http://testserver"}


@pytest.fixture
def big(network, clock):
    """Amounts past a thousand yuan: CoffeeCo's member earns 6,000,000 points and spends 5,956,789 of
    them at BookMart (a point is worth a fen), so CoffeeCo pays BookMart ¥59,567.89; the cycle is settled."""
    terms = dict(point_value="1", issuance_fee="0", redemption_fee_rate="0")
    coffee, book = make_partner(network, "CoffeeCo", **terms), make_partner(network, "BookMart", **terms)
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "coffee-1", points=6_000_000)
    clock.advance(minutes=5)
    burn = network.burn(book, member, "book-1", 5_956_789)
    clock.advance(days=1)
    network.settle(CYCLE)
    return {"coffee": coffee, "book": book, "member": member, "burn": burn}


@pytest.fixture
def finance_client(network, big):
    """A signed-in finance user (the staff fixture needs partners; these are the big fixture's)."""
    from shared.access import users
    from tests.dashboard.conftest import PASSWORD, make_client, sign_in

    password = users.new_password(PASSWORD)
    for email, role in (("fin@example.org", "finance"), ("op@example.org", "operator"),
                        ("checker@example.org", "operator")):
        network.tx(lambda tx, e=email, r=role: users.add_user(tx, e, r, password))
    made = []

    def make(email: str = "fin@example.org", lang: str | None = None):
        client = make_client(network)
        made.append(client)
        assert sign_in(client, email).status_code == 303
        if lang:
            assert post_form(client, f"{BASE}/language", {"language": lang, "next": "/"}).status_code == 303
        return client

    yield make
    for client in made:
        client.close()


def chart_json(html: str, chart: str) -> dict:
    return json.loads(html.split(f'id="{chart}-data">', 1)[1].split("</script>", 1)[0])


def row_of(html: str, attribute: str) -> str:
    return html.split(attribute, 1)[1].split("</tr>", 1)[0]


def settlement(network, party: str) -> Settlement:
    return network.tx(lambda tx: tx.session.get(Settlement, (CYCLE, party)), readonly=True)


# -- charts ----------------------------------------------------------------------------------------
def test_the_positions_chart_is_in_yuan_with_axis_titles_and_money_ticks(network, big, finance_client):
    page = finance_client().get(f"{BASE}/settlement/{CYCLE}").text
    chart = chart_json(page, "positions-chart")
    parties = re.findall(r'<tr data-party="([^"]+)"', page)
    expected = [f"{Decimal(settlement(network, p).net_minor).scaleb(-2):f}" for p in parties]
    assert chart["datasets"][0]["data"] == expected  # exact major units, as decimal text
    assert "-59567.89" in expected and "59567.89" in expected
    assert chart["axes"] == {"x": "Party", "y": "Amount (CNY)"}
    assert chart["money"] == {"symbol": "¥", "code": "CNY", "digits": 2}
    # the table beside it shows the same number as money
    assert "-¥59,567.89" in row_of(page, f'data-party="{big["coffee"]}"')
    zh = finance_client("op@example.org", lang="zh").get(f"{BASE}/settlement/{CYCLE}").text
    assert chart_json(zh, "positions-chart")["axes"] == {"x": "参与方", "y": "金额（元）"}
    assert "最小货币单位" not in zh.split('data-testid="positions"', 1)[0].split('<nav class="tabs">', 1)[1]


def test_the_matrix_chart_is_in_yuan_with_axis_titles(big, finance_client):
    page = finance_client().get(f"{BASE}/settlement/{CYCLE}", params={"tab": "matrix"}).text
    chart = chart_json(page, "matrix-chart")
    assert chart["labels"] == ["CoffeeCo → BookMart"]
    assert chart["datasets"] == [{"label": "redemption", "data": ["59567.89"]}]
    assert chart["axes"] == {"x": "Payer → payee", "y": "Amount (CNY)"}
    assert chart["money"]["symbol"] == "¥"
    zh = finance_client("op@example.org", lang="zh").get(f"{BASE}/settlement/{CYCLE}", params={"tab": "matrix"}).text
    assert chart_json(zh, "matrix-chart")["axes"] == {"x": "付款方 → 收款方", "y": "金额（元）"}


def test_the_dashboard_script_titles_the_axes_and_formats_ticks_as_money():
    from pathlib import Path

    import services.dashboard

    script = (Path(services.dashboard.__file__).parent / "static" / "dashboard.js").read_text()
    assert "data.axes" in script and "title" in script and "ticks" in script and "callback" in script


# -- amounts as money ------------------------------------------------------------------------------
def test_the_matrix_exact_amount_is_grouped_money(big, finance_client):
    page = finance_client().get(f"{BASE}/settlement/{CYCLE}", params={"tab": "matrix"}).text
    row = row_of(page, f'data-payer="{big["coffee"]}"')
    assert '5956789.000000' not in row.replace('data-exact="5956789.000000"', "")
    assert 'data-exact="5956789.000000"' in row  # the exact figure as the run's file holds it
    assert ">¥59,567.89<" in row
    assert "Exact amount (minor units)" not in page


# -- to pay, to receive ----------------------------------------------------------------------------
def test_a_due_status_says_to_pay_or_to_receive_by_direction(network, big, finance_client):
    page = finance_client().get(f"{BASE}/settlement/{CYCLE}").text
    coffee, book = row_of(page, f'data-party="{big["coffee"]}"'), row_of(page, f'data-party="{big["book"]}"')
    assert settlement(network, big["coffee"]).by_bank_minor < 0 < settlement(network, big["book"]).by_bank_minor
    assert ">to pay<" in coffee and ">to receive<" not in coffee
    assert ">to receive<" in book and ">to pay<" not in book
    zh = finance_client("op@example.org", lang="zh").get(f"{BASE}/settlement/{CYCLE}").text
    assert ">待付<" in row_of(zh, f'data-party="{big["coffee"]}"')
    assert ">待收<" in row_of(zh, f'data-party="{big["book"]}"')
    statements = finance_client().get(f"{BASE}/settlement/parties/{big['book']}").text
    assert ">to receive<" in statements and ">to pay<" not in statements


# -- approvals -------------------------------------------------------------------------------------
def test_a_mark_paid_request_shows_the_partner_and_the_amount_as_money(network, big, finance_client):
    coffee = big["coffee"]
    finance = finance_client()
    answer = post_form(finance, f"{BASE}/settlement/{CYCLE}/parties/{coffee}/paid", {"bank_reference": "BANK-1"},
                       page=f"{BASE}/settlement/{CYCLE}")
    assert "message=requested" in answer.headers["location"]
    checker = finance_client("checker@example.org")
    approvals = checker.get(f"{BASE}/approvals").text
    row = row_of(approvals, "data-pending=")
    assert "CoffeeCo" in row and coffee in row
    summary = row.split('data-testid="request-summary"', 1)[1].split("</div>", 1)[0]
    assert "¥59,567.89" in summary and 'data-by-bank="-5956789"' in summary
    assert re.search(r"Payer.*CoffeeCo.*Payee.*network", summary, re.S)
    assert "BANK-1" in summary
    assert "&#34;bank_reference&#34;: &#34;BANK-1&#34;" in row or '"bank_reference": "BANK-1"' in row  # raw, still there
    pending = approvals.split('data-pending="', 1)[1].split('"', 1)[0]
    assert post_form(checker, f"{BASE}/approvals/{pending}/approve", page=f"{BASE}/approvals").status_code == 303
    done = row_of(checker.get(f"{BASE}/approvals", params={"status": "all"}).text, "data-pending=")
    outcome = done.split('data-testid="outcome"', 1)[1].split("</small>", 1)[0]
    assert "paid" in outcome and "¥59,567.89" in outcome
    zh = finance_client("op@example.org", lang="zh").get(f"{BASE}/approvals", params={"status": "all"}).text
    summary = row_of(zh, "data-pending=").split('data-testid="request-summary"', 1)[1].split("</div>", 1)[0]
    assert re.search(r"付款方.*CoffeeCo.*收款方", summary, re.S) and "¥59,567.89" in summary


@pytest.mark.parametrize("amount, code", [("12.345", "validation_failed"), ("0", "validation_failed"),
                                          ("1,234.56", "validation_failed"), ("99999999", "amount_exceeds_due")])
def test_a_refused_mark_paid_comes_back_with_what_was_typed(network, big, finance_client, amount, code):
    """It was the error page: the bank reference and the amount typed were lost (docs/dashboard.md)."""
    coffee = big["coffee"]
    finance = finance_client()
    answer = post_form(finance, f"{BASE}/settlement/{CYCLE}/parties/{coffee}/paid",
                       {"bank_reference": "HSBC-2026-11-26-0042", "amount": amount}, page=f"{BASE}/settlement/{CYCLE}")
    assert answer.status_code in (409, 422), answer.status_code
    assert f'data-code="{code}" data-party="{coffee}" id="paid-error"' in answer.text, answer.text[:2000]
    row = row_of(answer.text, f'<tr data-party="{coffee}"')
    assert 'value="HSBC-2026-11-26-0042"' in row and f'value="{amount}"' in row
    assert 'aria-describedby="paid-error"' in row
    book = row_of(answer.text, f'<tr data-party="{big["book"]}"')
    assert 'value="HSBC' not in book  # another party's form is as it was
    assert settlement(network, coffee).status == "due"


def test_the_networks_own_payment_request_names_the_partners_as_the_other_side(network, clock, big, finance_client):
    """The network's row settles with the partners: its request said "Payer the network → Payee the network"."""
    fees = make_partner(network, "FeeCo", point_value="1", issuance_fee="0.1")  # the network receives fees
    network.earn(fees, make_member(network, fees), "fee-1", points=1000)
    cycle = network.clock.now().date()
    clock.advance(days=1)
    network.settle(cycle)
    finance = finance_client()
    answer = post_form(finance, f"{BASE}/settlement/{cycle}/parties/network/paid", {"bank_reference": "NET-1"},
                       page=f"{BASE}/settlement/{cycle}")
    assert "message=requested" in answer.headers["location"], answer.text
    by_bank = network.tx(lambda tx: tx.session.get(Settlement, (cycle, "network")).by_bank_minor)
    assert by_bank > 0
    row = row_of(finance_client("checker@example.org").get(f"{BASE}/approvals").text, "data-pending=")
    summary = row.split('data-testid="request-summary"', 1)[1].split("</div>", 1)[0]
    sides = ("the partners", "the network") if by_bank > 0 else ("the network", "the partners")
    assert re.search(rf"Payer <strong>{sides[0]}</strong> → Payee <strong>{sides[1]}</strong>", summary), summary
    zh = finance_client("op@example.org", lang="zh").get(f"{BASE}/approvals").text
    assert "各合作方" in row_of(zh, "data-pending=").split('data-testid="request-summary"', 1)[1]


def test_contract_and_suspension_requests_show_the_partners_name(network, big, finance_client):
    operator = finance_client("op@example.org")
    book = big["book"]
    answer = post_form(operator, f"{BASE}/partners/{book}/status", {"status": "suspended"},
                       page=f"{BASE}/partners/{book}")
    assert answer.status_code == 303, answer.text
    approvals = finance_client("checker@example.org").get(f"{BASE}/approvals").text
    row = row_of(approvals, "data-pending=")
    assert "partner_suspension" in row and "BookMart" in row and book in row


# -- a member's point changes ----------------------------------------------------------------------
def test_a_members_changes_are_grouped_and_signed(big, finance_client):
    page = finance_client().get(f"{BASE}/members/{big['member']}").text
    assert ">+6,000,000<" in page and ">-5,956,789<" in page
    assert "+6000000" not in page and ">-5956789<" not in page


# -- reconciliation --------------------------------------------------------------------------------
def partner_log(rows: list[tuple]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["reference", "kind", "points", "amount", "time"])
    writer.writerows(rows)
    return out.getvalue().encode()


def test_the_upload_says_the_logs_amount_is_in_fen_and_breaks_show_money(big, finance_client):
    client = finance_client()
    form = client.get(f"{BASE}/settlement/{CYCLE}/reconcile").text
    unit = form.split('data-testid="log-unit"', 1)[1].split("</p>", 1)[0]
    assert "minor units" in unit and "fen" in unit and "5956789" in unit and "¥59,567.89" in unit
    zh = finance_client("op@example.org", lang="zh").get(f"{BASE}/settlement/{CYCLE}/reconcile").text
    assert "分" in zh.split('data-testid="log-unit"', 1)[1].split("</p>", 1)[0]
    # a clerk who typed yuan: an amount mismatch, both sides shown as money
    answer = client.post(f"{BASE}/settlement/{CYCLE}/reconcile", headers=ORIGIN,
                         data={"csrf_token": csrf_of(form), "partner_id": big["book"], "format": "html"},
                         files={"log": ("bookmart.csv", partner_log([
                             ("book-1", "burn", 5_956_789, "59567.89", big["burn"]["posted_at"]),
                             ("book-9", "burn", 5, "5", big["burn"]["posted_at"])]), "text/csv")})
    assert answer.status_code == 200, answer.text
    mismatch = row_of(answer.text, 'data-break="amount_mismatch"')
    assert ">¥59,567.89<" in mismatch and ">¥595.6789<" in mismatch
    assert "5956789.000000" not in re.sub(r'data-[a-z]+="[^"]*"', "", mismatch)  # shown only as money
    assert 'data-ours="5956789.000000"' in mismatch  # the break's own text, as the CSV has it
    missing = row_of(answer.text, 'data-break="missing_on_network"')
    assert ">burn ¥0.05<" in missing
