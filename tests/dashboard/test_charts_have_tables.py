"""Every number drawn in a chart is also in a table on the same page (docs/dashboard.md): the pages
work without JavaScript, so a chart alone would hide its numbers from a reader without it."""

from __future__ import annotations

import json
import re
from datetime import date
from html import unescape
from pathlib import Path

import pytest

from tests.dashboard.conftest import BASE
from tests.factories import make_member

CYCLE = date(2026, 11, 20)
TEMPLATES = Path(__file__).resolve().parents[2] / "services" / "dashboard" / "templates"
# the pages with charts, walked below, by the template that draws them
CHART_PAGES = {
    "overview.html": "/",
    "reports_network.html": "/reports?from=2026-11-20&to=2026-11-21",
    "reports_partner.html": "/reports/partner/{coffee}?from=2026-11-20&to=2026-11-21",
    "settlement_cycle.html": "/settlement/2026-11-20?tab=positions",
}
MATRIX_PAGE = "/settlement/2026-11-20?tab=matrix"  # the same template's other tab


@pytest.fixture
def figures(network, clock, partners):
    """CoffeeCo issues 4,321 points on the first cycle and 1,000 on the next; the member spends 3,007 of
    them at BookMart; the first cycle is settled (so it has positions and a bilateral matrix)."""
    coffee, book = partners["CoffeeCo"], partners["BookMart"]
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "old", points=4321)
    clock.advance(minutes=5)
    network.burn(book, member, "book-1", 3007)
    clock.advance(days=1)
    network.earn(coffee, member, "new", points=1000)
    network.settle(CYCLE)
    clock.advance(hours=1)
    return {"coffee": coffee, "book": book}


def charts(html: str) -> dict[str, dict]:
    """Each chart's data (its JSON beside the canvas), by the canvas's id."""
    return {found: json.loads(re.search(rf'id="{found}-data">(.*?)</script>', html, re.S).group(1))
            for found in re.findall(r'<canvas id="([^"]+)"', html)}


def table_cells(html: str) -> set[str]:
    """The text of every cell of the page's tables, as numbers are compared: grouping commas, the
    currency symbol and spaces left out."""
    html = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    cells = set()
    for table in re.findall(r"<table.*?</table>", html, re.S):
        for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", table, re.S):
            cells.add(re.sub(r"[,¥\s]", "", unescape(re.sub(r"<[^>]+>", " ", cell))))
    return cells


def assert_every_number_in_a_table(html: str, page: str) -> int:
    drawn = charts(html)
    cells = table_cells(html)
    for chart_id, data in drawn.items():
        for dataset in data["datasets"]:
            for value in dataset["data"]:
                assert str(value) in cells, (f"{page}: {chart_id} draws {value!r} ({dataset['label']}), "
                                             f"which no table on the page holds")
    return len(drawn)


def test_every_template_with_a_chart_is_walked_here():
    """A new page with a chart fails here until it is added to CHART_PAGES (and so checked below)."""
    drawing = {path.name for path in TEMPLATES.glob("*.html")
               if path.name != "_macros.html" and re.search(r"\bchart\(", path.read_text())}
    assert drawing == set(CHART_PAGES)


def test_every_number_in_a_chart_is_in_a_table(client_as, figures):
    client = client_as("finance")
    for template, path in (*CHART_PAGES.items(), ("settlement_cycle.html", MATRIX_PAGE)):
        page = BASE + path.format(**figures)
        answer = client.get(page)
        assert answer.status_code == 200, page
        assert assert_every_number_in_a_table(answer.text, page) >= 1, f"{page} ({template}) drew no chart"


def test_the_overviews_points_per_day_are_in_a_table(network, clock, client_as, partners):
    """The overview's chart of points per day has a table of its days and numbers."""
    coffee = partners["CoffeeCo"]
    member = make_member(network, coffee)
    network.earn(coffee, member, "old", points=4321)
    clock.advance(days=1)
    network.earn(coffee, member, "new", points=1000)
    clock.advance(days=3)
    html = client_as("finance").get(f"{BASE}/").text
    without_scripts = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    assert "4,321" in without_scripts and "1,000" in without_scripts
    daily = re.search(r'<table data-testid="daily">.*?</table>', without_scripts, re.S)
    assert daily, "the overview has no table of points per day"
    assert "Points per day" in without_scripts
    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td>(.*?)</tr>", daily.group(0), re.S)
    assert len(rows) == 30  # the chart's 30 days, one row each
    issued = {day: re.findall(r'<td class="num">([^<]*)</td>', cells)[0] for day, cells in rows}
    assert [issued[day] for day in sorted(issued)][-5:-2] == ["4,321", "1,000", "0"]
