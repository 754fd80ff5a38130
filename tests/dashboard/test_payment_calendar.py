"""The Settlement page shows the payment calendar's coming year (docs/dashboard.md, "Settlement"):
the holidays and make-up working days from the network's business day on, a year ahead, in the
reader's language. Finance keeps the calendar with ``pointsnet clearing calendar``."""

from __future__ import annotations

import re
from datetime import date

from shared.settlement.calendar import add_calendar_day
from tests.dashboard.conftest import BASE, post_form

DAYS = ((date(2026, 11, 19), "Yesterday's holiday", "holiday"), (date(2026, 11, 23), "Founders' Day", "holiday"),
        (date(2026, 11, 29), "Make-up <for> Founders' Day", "working_day"),
        (date(2027, 11, 19), "A year on", "holiday"), (date(2027, 11, 22), "Beyond a year", "holiday"))


def calendar_rows(html: str) -> list[tuple[str, str]]:
    table = html.split('data-testid="calendar"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'data-day="([^"]+)" data-kind="([^"]+)"', table)


def test_the_coming_years_holidays_and_working_days_are_listed_in_the_readers_language(network, client_as):
    for day, name, kind in DAYS:  # the network's day is 2026-11-20
        network.tx(lambda tx: add_calendar_day(tx, day, name, kind))
    finance = client_as("finance")
    html = finance.get(f"{BASE}/settlement").text
    assert calendar_rows(html) == [("2026-11-23", "holiday"), ("2026-11-29", "working_day"),
                                   ("2027-11-19", "holiday")]
    assert "Make-up &lt;for&gt; Founders&#39; Day" in html and "<for>" not in html  # escaped
    assert "Sunday" in html and "working day (payments)" in html
    assert post_form(finance, f"{BASE}/language", {"language": "zh", "next": "/settlement"}).status_code == 303
    chinese = finance.get(f"{BASE}/settlement").text
    assert "星期日" in chinese and "调休上班日（付款）" in chinese and "节假日（不付款）" in chinese


def test_without_calendar_days_the_page_says_payments_fall_on_weekdays(client_as):
    html = client_as("operator").get(f"{BASE}/settlement").text
    assert calendar_rows(html) == []
    assert "No holidays or working days in the coming year" in html


def test_partner_viewers_do_not_see_the_settlement_page(client_as):
    assert client_as("viewer").get(f"{BASE}/settlement").status_code == 403
