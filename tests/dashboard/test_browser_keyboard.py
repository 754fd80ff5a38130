"""The dashboard for an operator on the keyboard with a screen reader, or in a narrow window: a skip link
first on every page, a refused form's reason taking the focus (so it is read out and the keyboard starts
there), and a partner page's tabs wrapping at 400 px instead of running off the screen."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_the_first_tab_stop_skips_to_the_content(page_as, live_dashboard):
    page = page_as("operator")
    page.goto(f"{live_dashboard}/partners")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.evaluate("document.activeElement.getBoundingClientRect().left") >= 0  # shown once focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")  # the next stop is in the page's content, not the menu
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")


def test_a_refused_forms_reason_takes_the_focus(page_as, live_dashboard):
    page = page_as("operator")
    page.goto(f"{live_dashboard}/partners/new")
    page.fill("input[name=name]", "TeaHouse")
    page.fill("input[name=redemption_fee_rate]", "2")
    page.click("[data-testid=onboard-form] button[type=submit]")
    page.wait_for_selector("#onboard-error")
    assert page.evaluate("document.activeElement.id") == "onboard-error"
    assert page.input_value("input[name=name]") == "TeaHouse"  # what was typed is kept


def test_a_partners_tabs_fit_a_narrow_window(page_as, live_dashboard, partners):
    page = page_as("operator")
    page.set_viewport_size({"width": 400, "height": 800})
    page.goto(f"{live_dashboard}/partners/{partners['CoffeeCo']}")
    right = page.evaluate("Math.max(...[...document.querySelectorAll('nav.tabs a')]"
                          ".map(a => a.getBoundingClientRect().right))")
    assert right <= 400, right
