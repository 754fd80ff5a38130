"""Partners and members in Debian's headless chromium: onboard a partner, rotate its key, find a
member by phone; screenshots of the partners list, a partner page and a member page."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.signing import public_key_pem
from tests.dashboard.conftest import screenshot

pytestmark = pytest.mark.browser


def pem() -> str:
    return public_key_pem(Ed25519PrivateKey.generate().public_key()).decode()


def test_onboard_a_partner_and_rotate_its_key(page_as, live_dashboard, partners):
    page = page_as("operator")
    page.on("dialog", lambda dialog: dialog.accept())  # the revoke button asks for confirmation
    page.goto(f"{live_dashboard}/partners")
    page.click("[data-testid=onboard-link]")
    page.fill("input[name=name]", "TeaHouse")
    page.select_option("select[name=billing]", "prepaid")
    page.fill("input[name=point_value]", "1")
    page.fill("input[name=redemption_fee_rate]", "0.05")
    page.fill("textarea[name=public_key]", pem())
    page.click("[data-testid=onboard-form] button[type=submit]")
    page.wait_for_selector("[data-message=created]")
    assert page.inner_text("[data-testid=partner-name]").startswith("TeaHouse")
    assert page.locator("[data-testid=active-keys] li").count() == 1
    screenshot(page, "partner")

    page.click("[data-tab=keys]")
    old_key = page.locator("tr[data-status=active]").get_attribute("data-key")
    page.fill("[data-testid=key-form] textarea[name=public_key]", pem())
    page.click("[data-testid=key-form] button[type=submit]")
    page.wait_for_selector("[data-message=done]")
    assert page.locator("tr[data-status=active]").count() == 2
    page.click(f"tr[data-key='{old_key}'] button[type=submit]")
    page.wait_for_selector(f"tr[data-key='{old_key}'][data-status=revoked]")
    assert page.locator("tr[data-status=active]").count() == 1

    page.click("header nav a[data-nav=partners]")
    rows = page.locator("[data-testid=partners] tbody tr")
    assert rows.count() == 3 and "TeaHouse" in page.inner_text("[data-testid=partners]")
    screenshot(page, "partners")


def test_find_a_member_by_phone(page_as, live_dashboard, network, partners):
    member = network.enrol(partners["CoffeeCo"], phone="+8613912345678", email="li.wei@example.org")["member_id"]
    network.earn(partners["CoffeeCo"], member, "e1", points=120)
    page = page_as("operator")
    page.goto(f"{live_dashboard}/members")
    asked = []
    page.on("request", lambda request: asked.append((request.method, request.url)))
    page.fill("[data-testid=member-search] input[name=q]", "139 1234 5678")
    page.select_option("[data-testid=member-search] select[name=by]", "phone")
    page.click("[data-testid=member-search] button[type=submit]")
    page.wait_for_selector("[data-testid=member-id]")
    # the form is a POST: the number is in no URL (history, logs), and the answer names the member by id
    assert ("POST", f"{live_dashboard}/members") in asked and page.url == f"{live_dashboard}/members/{member}"
    assert not [url for _, url in asked if "q=" in url or "1234+5678" in url or "1234%205678" in url], asked
    assert page.inner_text("[data-testid=member-id]") == member
    assert page.inner_text("[data-field=phone]") == "+86*******5678"
    assert "120" in page.inner_text("[data-testid=available]")
    screenshot(page, "member")
