"""The same numbers in every format; the HTML renders in real headless chromium with the right series."""

import json

import pytest

from shared.money import MoneyError
from shared.reports.labels import format_money, format_rate
from shared.reports.render import csv_values, flatten, render
from shared.reports.service import build_network, build_partner
from shared.reports.period import Period

PERIOD = Period.parse("2026-11-20", "2026-12-15")


@pytest.fixture
def coffee_report(network, coalition):
    return build_partner(network, coalition["coffee"], PERIOD)


@pytest.fixture
def network_analytics(network, coalition):
    return build_network(network, PERIOD)


def test_json_and_csv_hold_the_same_values(coffee_report):
    again = json.loads(render(coffee_report, "json"))
    assert again == coffee_report
    values = csv_values(render(coffee_report, "csv"))
    assert values == {(f"{s}.{n}" if n else s): v for s, n, v in flatten(again)}
    assert values["points.issued"] == "1900"
    assert values["money.totals.net_minor"] == "-568"
    assert values["liability.expiry_schedule.2027-01.points"] == "300"
    assert values["members.repeat_purchase_rate"] == "0.3333"
    assert values[f"flows.spent_elsewhere.{coffee_report['flows']['spent_elsewhere'][0]['partner_id']}.points"] == "530"
    assert values["members.tier_mix.silver"] == "1" and values["members.status_mix.active"] == "3"


def test_money_is_formatted_in_the_network_currency():
    assert format_money(-568, "CNY") == "-¥5.68"
    assert format_money(123456789, "CNY") == "¥1,234,567.89"
    assert format_money(1500, "JPY") == "¥1,500"
    assert format_money(5, "CHF") == "0.05 CHF" and format_money(5, "CLP") == "5 CLP"  # no symbol: the code after
    with pytest.raises(MoneyError):  # not an ISO 4217 currency: its places are unknown, never guessed as 2
        format_money(5, "XYZ")
    assert format_rate("0.3333") == "33.33%" and format_rate(None) == "—"


def test_chinese_labels(coffee_report):
    html = render(coffee_report, "html", "zh")
    assert 'lang="zh-CN"' in html and "合作伙伴业绩报告" in html and "复购率" in html
    assert "Partner performance report" not in html
    english = render(coffee_report, "html", "en")
    assert "Partner performance report" in english and "复购率" not in english


def test_html_is_self_contained(coffee_report, network_analytics):
    for report in (coffee_report, network_analytics):
        html = render(report, "html")
        assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "https://" not in html and "@media print" in html


def _check_in_browser(browser, report, *, series: dict[str, list[int]], cells: dict, schedule: dict):
    csv = csv_values(render(report, "csv"))
    page = browser.new_page()
    page.set_content(render(report, "html"))
    try:
        shown = page.eval_on_selector_all("[data-key]", "els => els.map(e => [e.dataset.key, e.dataset.value, "
                                                          "e.textContent.trim(), e.getBoundingClientRect().width > 0])")
        assert shown, "no figures in the page"
        for key, value, text, visible in shown:
            assert csv[key] == value, key
            assert visible, f"{key} is not displayed"
        daily = page.eval_on_selector_all(
            "#chart-daily g.series", "gs => Object.fromEntries(gs.map(g => [g.dataset.series, "
            "Array.from(g.querySelectorAll('rect.bar')).map(r => [r.dataset.x, Number(r.dataset.value), "
            "r.getBBox().height])]))")
        assert {name: [value for _x, value, _h in bars] for name, bars in daily.items()} == series
        for name, bars in daily.items():
            assert [x for x, _v, _h in bars] == [d.isoformat() for d in PERIOD.days]
            assert all((height > 0) == (value != 0) for _x, value, height in bars), name
            assert all(csv[f"daily.{x}.{name}"] == str(value) for x, value, _h in bars)
        drawn = page.eval_on_selector_all("#chart-flows rect.cell", "rs => rs.map(r => [r.dataset.funder, "
                                          "r.dataset.redeemer, Number(r.dataset.value)])")
        assert {(f, r): v for f, r, v in drawn if v} == cells
        months = page.eval_on_selector_all("#chart-expiry rect.bar", "rs => rs.map(r => [r.dataset.x, "
                                           "Number(r.dataset.value)])")
        assert dict(months) == schedule
        return page.evaluate("() => Object.fromEntries(Array.from(document.querySelectorAll('[data-key]'))"
                             ".map(e => [e.dataset.key, e.textContent.trim()]))")
    finally:
        page.close()


@pytest.mark.browser
def test_partner_html_in_chromium(browser, coffee_report, coalition):
    coffee, air, book = coalition["coffee"], coalition["air"], coalition["book"]
    def day(values):
        return [values.get(d.isoformat(), 0) for d in PERIOD.days]
    text = _check_in_browser(
        browser, coffee_report,
        series={"issued": day({"2026-11-20": 800, "2026-11-21": 800, "2026-12-15": 300}),
                "redeemed_here": day({"2026-11-21": 150}),
                "redeemed_elsewhere": day({"2026-11-20": 500, "2026-11-21": 30}),
                "expired": day({"2026-12-15": 170}), "adjusted_out": day({})},
        cells={(coffee, book): 530, (air, coffee): 150},
        schedule={"2026-12": 800, "2027-01": 300})
    csv = csv_values(render(coffee_report, "csv"))
    # totals as people read them equal the CSV's
    assert text["money.totals.net_minor"] == format_money(int(csv["money.totals.net_minor"]), "CNY") == "-¥5.68"
    assert text["money.totals.fees_paid_minor"] == "¥1.88"
    assert text["points.issued"] == "1,900" and csv["points.issued"] == "1900"
    assert text["liability.outstanding_points"] == "1,100"
    assert text["members.repeat_purchase_rate"] == "33.33%"


@pytest.mark.browser
def test_the_report_prints_to_a_clean_document(browser, coffee_report):
    page = browser.new_page()
    page.set_content(render(coffee_report, "html"))
    try:
        page.emulate_media(media="print")
        assert page.evaluate("getComputedStyle(document.body).maxWidth") == "none"
        assert page.evaluate("getComputedStyle(document.querySelector('#chart-daily')).breakInside") == "avoid"
        assert page.locator("#chart-daily rect.bar").count() == 5 * len(PERIOD.days)
        assert page.pdf(format="A4")[:5] == b"%PDF-"
    finally:
        page.close()


@pytest.mark.browser
def test_network_html_in_chromium(browser, network_analytics, coalition):
    coffee, air, book = coalition["coffee"], coalition["air"], coalition["book"]
    def day(values):
        return [values.get(d.isoformat(), 0) for d in PERIOD.days]
    text = _check_in_browser(
        browser, network_analytics,
        series={"issued": day({"2026-11-20": 1100, "2026-11-21": 850, "2026-12-15": 300}),
                "issue_reversed": day({"2026-11-21": 100}),
                "redeemed": day({"2026-11-20": 600, "2026-11-21": 180}),
                "expired": day({"2026-12-15": 220}), "adjusted_out": day({})},
        cells={(coffee, book): 530, (air, coffee): 150, (air, book): 100},
        schedule={"2026-12": 850, "2027-01": 300})
    assert text["totals.issued"] == "2,250" and text["totals.breakage_rate"] == "22.00%"
    assert text["network_revenue_minor"] == "¥2.55"
    assert text[f"leaderboard.{book}.net_minor"] == "¥5.98"
