"""The reconciliation page says what unit a partner log's amount is in, for the network's currency: it said
"100 times too small" whatever the currency (1,000 for KWD), "¥5,956,789 is written 5956789, not 5956789"
for JPY (which has no minor unit), and "not in yuan" in Chinese for every currency."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from shared.config import Settings
from tests.dashboard.conftest import BASE, post_form
from tests.factories import make_member, make_partner

CYCLE = date(2026, 11, 20)


@pytest.fixture(params=["CNY", "JPY", "KWD"])
def settings(request, tmp_path) -> Settings:
    return Settings(data_dir=Path(tmp_path) / "data", webhook_allow_private_targets=True,
                    dashboard_secure_cookies=False, currency=request.param)


def unit_note(html: str) -> str:
    return html.split('data-testid="log-unit"', 1)[1].split("</p>", 1)[0]


def test_the_log_unit_note_fits_the_currency(network, clock, client_as, settings):
    shop = make_partner(network, "Shop")
    network.earn(shop, make_member(network, shop), "e1", points=10)
    clock.advance(days=1)
    network.settle(CYCLE)
    client = client_as("finance")
    english = unit_note(client.get(f"{BASE}/settlement/{CYCLE}/reconcile").text)
    assert post_form(client, f"{BASE}/language", {"language": "zh", "next": "/"}).status_code == 303
    chinese = unit_note(client.get(f"{BASE}/settlement/{CYCLE}/reconcile").text)
    assert f"minor units of {settings.currency}" in english and "5956789" in english
    factor = {"CNY": "100", "JPY": None, "KWD": "1,000"}[settings.currency]
    if factor is None:  # no minor unit: the amount is the same either way
        assert "times too small" not in english and "not in major units" not in english.lower(), english
        assert english.count("5956789") == 1
        assert "倍" not in chinese
    else:
        assert f"{factor} times too small" in english, english
        assert f"小 {factor} 倍" in chinese, chinese
