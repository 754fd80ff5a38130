"""A partner's name of 200 characters without a space (the longest onboarding takes) does not widen any
page past the window: it wraps (or is cut with the full name in a title) in the directory, on the
partner's pages, the Overview leaderboard, the reports and a settlement cycle."""

from __future__ import annotations

from datetime import date

import pytest

from tests.dashboard.conftest import screenshot
from tests.factories import make_member

pytestmark = pytest.mark.browser
LONG_NAME = "Ｗ" + "W" * 99 + "名" * 100  # 200 characters, no space to break at
WIDTH = 1280


@pytest.fixture
def long_partner(network, clock, partners):
    """A partner with the long name that issued points (the leaderboard) in a settled cycle."""
    long_id = network.create_partner(LONG_NAME)["partner_id"]
    member = make_member(network, long_id, also_linked_to=(partners["BookMart"],))
    network.earn(long_id, member, "long-1", points=500)
    clock.advance(minutes=5)
    network.burn(partners["BookMart"], member, "book-1", 100)
    clock.advance(days=1)
    network.settle(date(2026, 11, 20))
    return long_id


def test_a_long_partner_name_does_not_widen_any_page(page_as, live_dashboard, long_partner):
    page = page_as("operator")
    page.set_viewport_size({"width": WIDTH, "height": 900})
    paths = ["/", "/partners", f"/partners/{long_partner}", f"/partners/{long_partner}/contracts",
             f"/partners/{long_partner}/keys", f"/partners/{long_partner}/webhooks", f"/partners/{long_partner}/rules",
             "/reports", f"/reports/partner/{long_partner}", "/settlement/2026-11-20",
             "/settlement/2026-11-20?tab=matrix"]
    too_wide = {}
    for path in paths:
        answer = page.goto(f"{live_dashboard}{path}")
        assert answer.status == 200, path
        assert LONG_NAME[:20] in page.content(), f"{path} does not show the partner"
        width = page.evaluate("document.documentElement.scrollWidth")
        inner = page.evaluate("window.innerWidth")
        if width > inner:
            too_wide[path] = width
            screenshot(page, "long-name-" + path.strip("/").replace("/", "-").replace("?", "-") or "overview")
    assert too_wide == {}, f"pages wider than the {WIDTH} px window: {too_wide}"
