"""Dates and times the dashboard shows are the network's local ones (ARCHITECTURE.md, "Time";
docs/dashboard.md): a day is the network's business day, a time carries its offset, and a lot's
expiry date is the last day its points can be used, as the member's reminder names it."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from tests.dashboard.conftest import BASE
from tests.factories import make_member

UTC = timezone.utc


def lot_row(html: str) -> str:
    return next(line for line in html.splitlines() if "data-lot=" in line)


def test_a_members_lots_show_the_local_issue_day_and_last_usable_day(network, clock, client_as, partners):
    """Asia/Shanghai: earned at 07:00 on 20 November (23:00 UTC the 19th), rolling:12 — issued on the
    20th, usable through 20 November 2027."""
    coffee = partners["CoffeeCo"]
    member = make_member(network, coffee)
    clock.set(datetime(2026, 11, 19, 23, 0, tzinfo=UTC))
    assert network.earn(coffee, member, "morning", points=100)["cycle_date"] == "2026-11-20"
    row = lot_row(client_as("operator").get(f"{BASE}/members/{member}/lots").text)
    assert "2026-11-20" in row and "2027-11-20" in row and "2026-11-19" not in row, row


def test_points_expiring_at_a_local_midnight_show_the_day_before(network, clock, client_as, partners):
    """end_of_month:1: points earned on 20 November expire at local midnight starting 1 January, which
    is 16:00 UTC on 31 December; their last day is 31 December (not 1 January, nor a UTC date)."""
    network.settings.expiry_policy = "end_of_month:1"
    coffee = partners["CoffeeCo"]
    member = make_member(network, coffee)
    lot = network.earn(coffee, member, "e1", points=100)["lots"][0]
    assert lot["expires_at"].startswith("2026-12-31T16:00:00")
    clock.set(datetime(2026, 12, 10, 2, 0, tzinfo=UTC))  # within 30 days: the member page lists them
    client = client_as("operator")
    row = lot_row(client.get(f"{BASE}/members/{member}/lots").text)
    assert "2026-12-31" in row and "2027-01-01" not in row, row
    html = client.get(f"{BASE}/members/{member}").text
    line = next(line for line in html.splitlines() if "(20" in line and "100" in line)
    assert "(2026-12-31)" in line, line


def test_the_member_page_lists_points_expiring_soon_under_their_last_local_day(network, clock, client_as,
                                                                                 partners):
    network.settings.expiry_policy = "days:20"
    coffee = partners["CoffeeCo"]
    member = make_member(network, coffee)
    clock.set(datetime(2026, 11, 19, 23, 0, tzinfo=UTC))  # 07:00 on the 20th in Shanghai
    network.earn(coffee, member, "morning", points=100)  # expires 07:00 on 10 December, local
    html = client_as("operator").get(f"{BASE}/members/{member}").text
    line = next(line for line in html.splitlines() if "(20" in line and "100" in line)
    assert "(2026-12-10)" in line, line
    movement = next(line for line in html.splitlines() if 'data-kind="earn"' in line)
    assert "2026-11-20 07:00:00 +08:00" in movement, movement


def test_settlement_and_ledger_times_are_local_with_their_offset(network, clock, client_as, partners):
    """Cycle 2026-11-20 is settled at 00:35 on the 21st in Shanghai (16:35 UTC): the Settlement page
    says so, with the offset, never 16:35 beside a cycle that had not yet ended then."""
    coffee = partners["CoffeeCo"]
    member = make_member(network, coffee)
    clock.set(datetime(2026, 11, 19, 23, 0, tzinfo=UTC))  # 07:00 on the 20th in Shanghai
    entry = network.earn(coffee, member, "e1", points=100)["entry_id"]
    clock.set(datetime(2026, 11, 20, 16, 35, tzinfo=UTC))
    assert [s["cycle_date"] for s in network.settle_due()] == ["2026-11-20"]
    client = client_as("finance")
    html = client.get(f"{BASE}/settlement").text
    row = html[html.index('data-cycle="2026-11-20"'):]
    row = row[:row.index("</tr>")]
    assert "2026-11-21 00:35 +08:00" in row and "16:35" not in row, row
    cycle = client.get(f"{BASE}/settlement/2026-11-20").text
    assert "2026-11-21 00:35 +08:00" in cycle and "16:35" not in cycle
    ledger = client.get(f"{BASE}/ledger").text
    assert "2026-11-20 07:00:00 +08:00" in ledger and "2026-11-19 23:00" not in ledger
    detail = client.get(f"{BASE}/ledger/entries/{entry}").text
    assert "2026-11-20 07:00:00 +08:00" in detail and "23:00:00 UTC" not in detail
    assert re.search(r"<td>2027-11-20</td>", detail), "the lot's last usable day"


def test_an_instant_at_the_calendars_end_is_shown_in_utc(network, client_as, partners):
    """A rules version stored for late on 9999-12-31 (before rules versions had a horizon) lies past
    year 9999 in the network's zone (+08:00): the Rules tab shows it in UTC rather than failing."""
    from sqlalchemy import insert

    from shared.db.types import new_id
    from shared.models import EarnRuleSet

    coffee = partners["CoffeeCo"]
    network.tx(lambda tx: tx.session.execute(insert(EarnRuleSet.__table__).values(
        id=new_id("rul"), scope=coffee, version=1, effective_from=datetime(9999, 12, 31, 20, 0, tzinfo=UTC),
        document='{"activities": {"survey": {"points": 50}}}', created_at=datetime(2026, 11, 20, tzinfo=UTC))))
    answer = client_as("operator").get(f"{BASE}/partners/{coffee}/rules")
    assert answer.status_code == 200 and 'data-version="1"' in answer.text
    assert "9999-12-31 20:00" in answer.text and "+00:00" in answer.text
