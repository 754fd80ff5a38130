"""The dashboard's Mark paid with an amount: part of a settlement, requested, approved by a second operator
(checked again then), the rest outstanding on the cycle's page with the party's payments listed."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from sqlalchemy import insert

from shared.models import Settlement
from shared.settlement.finance import record_payment
from tests.dashboard.conftest import BASE, post_form
from tests.factories import make_member

CYCLE = date(2026, 11, 20)
PAGE = f"{BASE}/settlement/{CYCLE}"


@pytest.fixture
def settled(network, clock, partners):
    coffee, book = partners["CoffeeCo"], partners["BookMart"]
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "coffee-1", points=500)
    network.burn(book, member, "book-1", 300)
    clock.advance(days=1)
    network.settle(CYCLE)
    due = network.tx(lambda tx: -tx.session.get(Settlement, (CYCLE, coffee)).by_bank_minor, readonly=True)
    assert due > 200
    return {"coffee": coffee, "book": book, "due": due}


def row_of(html: str, party: str) -> str:
    return html.split(f'data-party="{party}"', 1)[1].split("</tr>", 1)[0]


def approve_the_request(client_as) -> object:
    checker = client_as("checker")
    approvals = checker.get(f"{BASE}/approvals").text
    pending = int(approvals.split('data-pending="', 1)[1].split('"', 1)[0])
    return post_form(checker, f"{BASE}/approvals/{pending}/approve", page=f"{BASE}/approvals")


def test_a_partial_payment_is_requested_approved_and_shown_with_what_is_outstanding(client_as, network, settled):
    coffee, due = settled["coffee"], settled["due"]
    finance = client_as("finance")
    form = finance.get(PAGE).text
    assert 'name="amount"' in row_of(form, coffee)
    asked = post_form(finance, f"{PAGE}/parties/{coffee}/paid", {"bank_reference": "BK-1", "amount": "2.00"},
                      page=PAGE)
    assert asked.status_code == 303 and "message=requested" in asked.headers["location"], asked.text
    approvals = client_as("checker").get(f"{BASE}/approvals").text
    assert '&#34;amount_minor&#34;: 200' in approvals or '"amount_minor": 200' in approvals
    summary = approvals.split('data-testid="request-summary"', 1)[1].split("</div>", 1)[0]
    assert "¥2.00" in summary  # the request's amount, not the settlement's
    assert approve_the_request(client_as).status_code == 303
    row = network.tx(lambda tx: tx.session.get(Settlement, (CYCLE, coffee)), readonly=True)
    assert (row.status, row.bank_reference) == ("due", None)  # partly paid: still due
    page = finance.get(PAGE).text
    party = row_of(page, coffee)
    assert 'data-paid="200"' in party and f'data-outstanding="{due - 200}"' in party, party
    assert 'name="amount"' in party  # the rest can be marked
    payments = page.split('data-testid="payments"', 1)[1].split("</table>", 1)[0]
    assert "BK-1" in payments and 'data-amount="200"' in payments
    zh = client_as("finance")
    assert post_form(zh, f"{BASE}/language", {"language": "zh", "next": "/"}).status_code == 303
    chinese = zh.get(PAGE).text
    assert "已付部分" in row_of(chinese, coffee) and "未付余额" in row_of(chinese, coffee)
    assert "付款记录" in chinese
    # the rest, no amount: the whole outstanding
    assert post_form(finance, f"{PAGE}/parties/{coffee}/paid", {"bank_reference": "BK-2", "amount": " "},
                     page=PAGE).status_code == 303
    assert approve_the_request(client_as).status_code == 303
    row = network.tx(lambda tx: tx.session.get(Settlement, (CYCLE, coffee)), readonly=True)
    assert (row.status, row.bank_reference) == ("paid", "BK-2")


def test_more_than_the_outstanding_is_refused_at_once_and_again_at_approval(client_as, network, settled):
    coffee, due = settled["coffee"], settled["due"]
    finance = client_as("finance")
    over = post_form(finance, f"{PAGE}/parties/{coffee}/paid",
                     {"bank_reference": "BK-1", "amount": f"{(due + 1) / 100:.2f}"}, page=PAGE)
    assert over.status_code == 409 and 'data-code="amount_exceeds_due"' in over.text, over.text
    assert f"has {due} outstanding (minor units; 0 of {due} recorded)" in over.text
    zh = client_as("operator")
    assert post_form(zh, f"{BASE}/language", {"language": "zh", "next": "/"}).status_code == 303
    refused = post_form(zh, f"{PAGE}/parties/{coffee}/paid", {"bank_reference": "BK-1", "amount": "99999"}, page=PAGE)
    assert f"的结算未付余额为 {due}（最小货币单位" in refused.text, refused.text
    asked = post_form(finance, f"{PAGE}/parties/{coffee}/paid", {"bank_reference": "BK-1", "amount": "2.00"},
                      page=PAGE)
    assert asked.status_code == 303
    # meanwhile finance records a transfer from the command line: 2.00 is now more than what is outstanding
    network.tx(lambda tx: record_payment(tx, CYCLE, coffee, "CLI-1", amount_minor=due - 100))
    refused = approve_the_request(client_as)
    assert refused.status_code == 409 and 'data-code="amount_exceeds_due"' in refused.text, refused.text
    row = network.tx(lambda tx: tx.session.get(Settlement, (CYCLE, coffee)), readonly=True)
    assert row.status == "due"
    history = client_as("checker").get(f"{BASE}/approvals", params={"status": "failed"}).text
    assert "amount_exceeds_due" in history


@pytest.mark.parametrize("amount", ["1,000.00", "-1", "3.001", "NaN", "1e2", "0"])
def test_an_amount_that_is_not_a_plain_positive_decimal_is_refused(client_as, network, settled, amount):
    answer = post_form(client_as("finance"), f"{PAGE}/parties/{settled['coffee']}/paid",
                       {"bank_reference": "BK-1", "amount": amount}, page=PAGE)
    assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text, answer.text
    assert 'data-pending=' not in client_as("checker").get(f"{BASE}/approvals").text


def test_a_whole_outstanding_request_on_a_partly_paid_settlement_shows_what_is_outstanding(client_as, network,
                                                                                           settled):
    """A "mark paid" with the amount blank on a settlement already paid in part records what is outstanding:
    the Approvals page shows that (labelled so) while it waits, and what it recorded once approved — never the
    settlement's whole by-bank amount."""
    coffee, due = settled["coffee"], settled["due"]
    whole = f"¥{due / 100:,.2f}"
    network.tx(lambda tx: record_payment(tx, CYCLE, coffee, "CLI-1", amount_minor=due - 100))  # 1.00 outstanding
    asked = post_form(client_as("finance"), f"{PAGE}/parties/{coffee}/paid", {"bank_reference": "BK-REST", "amount": ""},
                      page=PAGE)
    assert asked.status_code == 303 and "message=requested" in asked.headers["location"], asked.text
    summary = client_as("checker").get(f"{BASE}/approvals").text.split('data-testid="request-summary"', 1)[1] \
        .split("</div>", 1)[0]
    assert "Outstanding (whole)" in summary and "¥1.00" in summary and whole not in summary, summary
    zh = client_as("operator")
    assert post_form(zh, f"{BASE}/language", {"language": "zh", "next": "/"}).status_code == 303
    chinese = zh.get(f"{BASE}/approvals").text.split('data-testid="request-summary"', 1)[1].split("</div>", 1)[0]
    assert "未付余额（全部）" in chinese and "¥1.00" in chinese and whole not in chinese, chinese
    assert approve_the_request(client_as).status_code == 303
    done = client_as("checker").get(f"{BASE}/approvals", params={"status": "approved"}).text
    outcome = done.split('data-testid="outcome"', 1)[1].split("</small>", 1)[0]
    assert "paid" in outcome and "¥1.00" in outcome and whole not in outcome, outcome
    summary = done.split('data-testid="request-summary"', 1)[1].split("</div>", 1)[0]
    assert "¥1.00" in summary and whole not in summary and "Outstanding (whole)" not in summary, summary
    chinese = zh.get(f"{BASE}/approvals", params={"status": "approved"}).text
    assert "¥1.00" in chinese.split('data-testid="outcome"', 1)[1].split("</small>", 1)[0]


def test_an_approved_part_shows_the_amount_its_outcome_recorded(client_as, network, settled):
    """The outcome of an approved part carries ``amount_minor``, that transfer's amount, and the page shows it."""
    coffee = settled["coffee"]
    assert post_form(client_as("finance"), f"{PAGE}/parties/{coffee}/paid",
                     {"bank_reference": "BK-1", "amount": "1.00"}, page=PAGE).status_code == 303
    assert approve_the_request(client_as).status_code == 303
    done = client_as("checker").get(f"{BASE}/approvals", params={"status": "approved"}).text
    outcome = done.split('data-testid="outcome"', 1)[1].split("</small>", 1)[0]
    assert "partly paid" in outcome and "¥1.00" in outcome, outcome
    assert '&#34;amount_minor&#34;: 100' in done.split('raw-outcome', 1)[1].split("</small>", 1)[0]


def test_my_partner_shows_what_is_paid_and_outstanding_of_a_partly_paid_settlement(client_as, network, settled):
    coffee, due = settled["coffee"], settled["due"]
    network.tx(lambda tx: record_payment(tx, CYCLE, coffee, "CLI-1", amount_minor=due - 100))
    viewer = client_as("viewer")
    row = viewer.get(f"{BASE}/my-partner").text.split(f'data-cycle="{CYCLE}"', 1)[1].split("</tr>", 1)[0]
    assert f'data-paid="{due - 100}"' in row and 'data-outstanding="100"' in row, row
    assert "Paid so far" in row and "Outstanding" in row and "¥1.00" in row
    assert post_form(viewer, f"{BASE}/language", {"language": "zh", "next": "/my-partner"},
                     page=f"{BASE}/my-partner").status_code == 303
    chinese = viewer.get(f"{BASE}/my-partner").text.split(f'data-cycle="{CYCLE}"', 1)[1].split("</tr>", 1)[0]
    assert "已付部分" in chinese and "未付余额" in chinese
    network.tx(lambda tx: record_payment(tx, CYCLE, coffee, "CLI-2"))  # the rest: paid, nothing outstanding shown
    row = viewer.get(f"{BASE}/my-partner").text.split(f'data-cycle="{CYCLE}"', 1)[1].split("</tr>", 1)[0]
    assert "data-outstanding" not in row and "CLI-2" in row


def test_a_refusal_on_a_later_page_of_parties_shows_that_page_with_what_was_typed(client_as, network, settled):
    """A cycle with more parties than a page shows (50): a refused Mark paid answers with the page that
    holds the party's row (the reason above it, the bank reference and amount typed kept in the row), and
    that page's links lead to the cycle's own pages, not to the form's address."""
    coffee = settled["coffee"]
    earlier = [f"a-{n:02d}" for n in range(60)]  # parties before CoffeeCo in the table's order
    assert all(party < coffee for party in earlier)
    network.tx(lambda tx: tx.session.execute(insert(Settlement.__table__), [
        {"cycle_date": CYCLE, "party": party, "net_minor": 0, "from_float_minor": 0, "payment_date": CYCLE,
         "status": "nothing_due"} for party in earlier]))
    refused = post_form(client_as("finance"), f"{PAGE}/parties/{coffee}/paid",
                        {"bank_reference": "BK-LATE-7", "amount": "1,000.00"}, page=PAGE)
    assert refused.status_code == 422 and 'data-code="validation_failed"' in refused.text, refused.text
    row = refused.text.split(f'<tr data-party="{coffee}"', 1)[1].split("</tr>", 1)[0]
    assert 'value="BK-LATE-7"' in row and 'value="1,000.00"' in row, row
    assert 'data-party="a-00"' not in refused.text  # the second page, not the first
    previous = refused.text.split('rel="prev"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0]
    assert previous.startswith(f"{PAGE}?") and "offset=0" in previous, previous
    assert client_as("finance").get(previous.replace("&amp;", "&")).status_code == 200


def test_a_late_payment_says_overdue_in_words_not_only_in_red(client_as, network, clock, settled):
    coffee = settled["coffee"]
    row = network.tx(lambda tx: tx.session.get(Settlement, (CYCLE, coffee)), readonly=True)
    page = client_as("finance").get(PAGE).text
    assert 'data-testid="overdue"' not in page.split(f'<tr data-party="{coffee}"', 1)[1].split("</tr>", 1)[0]
    clock.set(datetime.combine(row.payment_date + timedelta(days=2), time(4), tzinfo=timezone.utc))
    late = client_as("finance").get(PAGE).text.split(f'<tr data-party="{coffee}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-testid="overdue">Overdue<' in late, late


def test_a_partners_statements_say_overdue_too(client_as, network, clock, settled):
    """docs/dashboard.md: a party's payment past its date says "Overdue" in words beside its status; the
    party's statements page (also a partner viewer's My partner) said only "to receive" (found by the
    finance month-end review)."""
    coffee = settled["coffee"]
    row = network.tx(lambda tx: tx.session.get(Settlement, (CYCLE, coffee)), readonly=True)

    def statement_row(role: str, path: str) -> str:
        return client_as(role).get(f"{BASE}{path}").text.split(f'data-cycle="{CYCLE}"', 1)[1].split("</tr>", 1)[0]

    assert 'data-testid="overdue"' not in statement_row("finance", f"/settlement/parties/{coffee}")
    clock.set(datetime.combine(row.payment_date + timedelta(days=2), time(4), tzinfo=timezone.utc))
    assert 'data-testid="overdue">Overdue<' in statement_row("finance", f"/settlement/parties/{coffee}")
    assert 'data-testid="overdue">Overdue<' in statement_row("viewer", "/my-partner")
    network.tx(lambda tx: record_payment(tx, CYCLE, coffee, "CLI-9"))
    assert 'data-testid="overdue"' not in statement_row("finance", f"/settlement/parties/{coffee}")
