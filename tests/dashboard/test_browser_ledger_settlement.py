"""Settlement, reconciliation and reports in Debian's headless chromium: the matrix and report charts
drawn by the vendored Chart.js, a partner's log uploaded for its breaks; screenshots as artefacts."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.dashboard.conftest import screenshot
from tests.dashboard.test_ledger_settlement import CYCLE, partner_log, settled  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def chart(page, chart_id: str):
    page.wait_for_selector(f"#{chart_id}[data-ready=true]")
    return page.evaluate("id => { const c = document.getElementById(id).pointsnetChart; return "
                         "{labels: c.data.labels, sets: c.data.datasets.map(d => [d.label, d.data])}; }", chart_id)


def axes(page, chart_id: str):
    """The drawn chart's axis titles (x, y) and its y-axis tick labels."""
    return page.evaluate("id => { const c = document.getElementById(id).pointsnetChart; return "
                         "{titles: [c.options.scales.x.title.text, c.options.scales.y.title.text], "
                         "ticks: c.scales.y.ticks.map(t => t.label)}; }", chart_id)


def test_settlement_cycle_matrix_chart_and_mark_paid_request(page_as, live_dashboard, settled):  # noqa: F811
    page = page_as("finance")
    page.goto(f"{live_dashboard}/settlement")
    page.click(f"a[href$='/settlement/{CYCLE}']")
    page.wait_for_selector("[data-testid=positions]")
    drawn = chart(page, "positions-chart")
    assert sorted(Decimal(v) for v in drawn["sets"][0][1]) == [Decimal("-3.00"), 0, Decimal("3.00")]  # yuan; network 0
    assert axes(page, "positions-chart")["titles"] == ["Party", "Amount (CNY)"]
    assert all(re.fullmatch(r"-?¥[0-9,]+(\.[0-9]+)?", tick) for tick in axes(page, "positions-chart")["ticks"])
    row = page.locator(f"tr[data-party='{settled['coffee']}']")
    row.locator("input[name=bank_reference]").fill("BANK-77")
    row.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=message]")
    assert page.locator(f"tr[data-party='{settled['coffee']}'] [data-testid=pending]").count() == 1
    screenshot(page, "settlement-cycle")
    page.click("[data-testid=matrix-tab]")
    drawn = chart(page, "matrix-chart")
    assert drawn == {"labels": ["CoffeeCo → BookMart"], "sets": [["redemption", ["3.00"]]]}
    assert axes(page, "matrix-chart")["titles"] == ["Payer → payee", "Amount (CNY)"]
    assert "¥3" in axes(page, "matrix-chart")["ticks"]
    screenshot(page, "settlement-matrix")


def test_a_partial_payment_from_the_form_leaves_the_rest_outstanding(page_as, live_dashboard, network, request):
    """Mark paid with an amount (four eyes off): the row stays to pay, with what was paid so far and what is
    outstanding, and the payment is listed with its reference; the rest, amount left blank, completes it."""
    coffee = request.getfixturevalue("settled")["coffee"]
    network.settings.four_eyes_actions = frozenset()
    page = page_as("finance")
    page.goto(f"{live_dashboard}/settlement/{CYCLE}")
    row = page.locator(f"tr[data-party='{coffee}']")
    row.locator("input[name=bank_reference]").fill("BANK-PART-1")
    row.locator("input[name=amount]").fill("1.00")
    row.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=message]")
    part = page.locator(f"tr[data-party='{coffee}'] .partly-paid")
    assert (part.get_attribute("data-paid"), part.get_attribute("data-outstanding")) == ("100", "200")
    assert page.locator("[data-testid=payments] tr[data-reference='BANK-PART-1'] [data-amount]").inner_text() == "¥1.00"
    screenshot(page, "settlement-partly-paid")
    row = page.locator(f"tr[data-party='{coffee}']")
    row.locator("input[name=bank_reference]").fill("BANK-PART-2")
    with page.expect_navigation():
        row.locator("button[type=submit]").click()
    assert page.locator(f"tr[data-party='{coffee}']").get_attribute("data-status") == "paid"
    assert page.locator("[data-testid=payments] tr[data-payment-party]").count() == 2


def test_reconciliation_upload_shows_breaks(page_as, live_dashboard, settled, tmp_path):  # noqa: F811
    log = tmp_path / "bookmart.csv"
    log.write_bytes(partner_log([("book-1", "burn", 300, "300.000000", "2026-11-20T02:05:00Z"),
                                 ("book-7", "burn", 5, "5", "2026-11-20T04:00:00Z")]))
    page = page_as("finance")
    page.goto(f"{live_dashboard}/settlement/{CYCLE}")
    page.locator(f"tr[data-party='{settled['book']}'] a[href*='/reconcile']").click()
    page.wait_for_selector("[data-testid=reconcile-form]")
    page.set_input_files("input[name=log]", str(log))
    page.click("button[name=format][value=html]")
    page.wait_for_selector("[data-testid=breaks]")
    assert page.locator("[data-testid=breaks] tbody tr").count() == 1
    assert page.locator("tr[data-reference='book-7']").get_attribute("data-break") == "missing_on_network"
    screenshot(page, "reconciliation")


def test_report_pages_draw_their_charts(page_as, live_dashboard, settled):  # noqa: F811
    page = page_as("operator")
    page.goto(f"{live_dashboard}/reports?from=2026-11-20&to=2026-11-21")
    daily = chart(page, "daily-chart")
    assert daily["labels"] == ["2026-11-20", "2026-11-21"]
    assert dict(daily["sets"])["issued"] == [500, 0]
    assert chart(page, "flows-chart") == {"labels": ["CoffeeCo"], "sets": [["BookMart", [300]]]}
    assert chart(page, "expiry-chart")["sets"][0][1] == [200]
    screenshot(page, "report-network")
    page.click(f"[data-testid=leaderboard] a[href*='{settled['coffee']}']")
    page.wait_for_selector("[data-testid=partner-name]")
    assert chart(page, "flows-chart")["sets"][0][1] == [300]  # CoffeeCo's points spent at BookMart
    screenshot(page, "report-partner")
