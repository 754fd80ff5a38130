"""The dashboard in Debian's headless chromium: signing in as each role, what each role sees,
the overview's chart, switching language."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import PASSWORD, screenshot

pytestmark = pytest.mark.browser


def nav_links(page) -> set[str]:
    return set(page.locator("header nav a").evaluate_all("links => links.map(a => a.dataset.nav)"))


def test_each_role_signs_in_and_sees_only_its_pages(page_as, live_dashboard):
    operator = page_as("operator")
    assert nav_links(operator) >= {"overview", "partners", "members", "ledger", "settlement", "reports",
                                   "approvals", "audit", "users"}
    assert "op@example.org" in operator.inner_text("[data-testid=signed-in-as]")
    screenshot(operator, "overview")

    finance = page_as("finance")
    links = nav_links(finance)
    assert {"settlement", "reports", "overview"} <= links and not links & {"approvals", "users"}
    finance.goto(f"{live_dashboard}/users")
    assert finance.locator("[data-code=forbidden]").count() == 1

    viewer = page_as("viewer")
    assert nav_links(viewer) == {"my_partner"}
    viewer.goto(f"{live_dashboard}/")
    assert viewer.locator("[data-code=forbidden]").count() == 1


def test_overview_chart_is_drawn_from_our_own_chart_library(page_as):
    page = page_as("operator")
    page.wait_for_selector("#daily-chart[data-ready=true]")
    labels = page.evaluate("document.getElementById('daily-chart').pointsnetChart.data.datasets.map(d => d.label)")
    assert labels == ["issued", "redeemed", "expired"]
    days = page.evaluate("document.getElementById('daily-chart').pointsnetChart.data.labels.length")
    assert days == 30
    scripts = page.evaluate("[...document.scripts].map(s => s.src).filter(Boolean)")
    assert scripts and all(src.startswith(page.url.split("/dashboard")[0]) for src in scripts)


def test_wrong_password_is_refused_and_the_language_switches(browser, live_dashboard, staff):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_dashboard}/login")
    page.fill("input[name=email]", staff["operator"])
    page.fill("input[name=password]", "not the password")
    with page.expect_navigation():  # until the answer has loaded, its scripts included
        page.click("form[action$='/login'] button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Wrong e-mail or password."
    with page.expect_navigation():  # the selector submits its form
        page.select_option("#language", "zh")
    assert page.locator("h1").inner_text() == "Pointsnet 管理后台"
    page.fill("input[name=email]", staff["operator"])
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form[action$='/login'] button[type=submit]")
    assert page.locator("h1").inner_text() == "网络概览"
    assert page.locator("header nav a[data-nav=settlement]").inner_text() == "结算"
    screenshot(page, "overview-zh")
    with page.expect_navigation():
        page.select_option("#language", "en")
    assert page.locator("h1").inner_text() == "Network overview"
    context.close()


def test_pages_fit_a_tablet_screen(page_as, live_dashboard):
    """At a tablet's width (820 px) the main pages need no sideways scrolling."""
    page = page_as("operator")
    page.set_viewport_size({"width": 820, "height": 1180})
    for path in ("/", "/partners", "/members", "/ledger", "/settlement", "/reports", "/approvals", "/audit"):
        assert page.goto(live_dashboard + path).status == 200, path
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
    page.goto(live_dashboard + "/")
    screenshot(page, "overview-tablet")
