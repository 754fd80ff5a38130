"""The scheduled job writes each settled cycle's and each complete month's reports, once, atomically."""

import json
from datetime import date, datetime, timedelta, timezone

from services.clearing.jobs import ledger_jobs
from shared.reports.delivery import publish_due, reports_dir
from shared.reports.period import Period
from shared.reports.render import render
from shared.reports.service import build_network, build_partner


def test_reports_job_is_scheduled(network):
    assert "reports" in [job.name for job in ledger_jobs(network)]


def test_settled_cycles_and_complete_months_are_written_once(network, clock, coalition):
    root = reports_dir(network)
    # now 2026-12-16 11:00 in Shanghai: November is over, but its quiet days from the 22nd are not settled
    assert publish_due(network) == {"cycles": ["2026-11-20", "2026-11-21", "2026-12-15"], "months": []}
    november_rest = [date(2026, 11, 22) + timedelta(days=n) for n in range(9)]
    for day in november_rest:
        network.settle(day)
    assert publish_due(network) == {"cycles": [d.isoformat() for d in november_rest], "months": ["2026-11"]}
    assert publish_due(network) == {"cycles": [], "months": []}
    coffee = coalition["coffee"]
    day = root / "cycles" / "2026-11-21"
    names = sorted(p.name for p in day.iterdir())
    assert names == sorted([f"partner-{coalition[n]}.{fmt}" for n in ("coffee", "air", "book")
                            for fmt in ("json", "csv", "html")] + ["network.json", "network.csv", "network.html",
                                                                   "index.json"])
    assert (day / f"partner-{coffee}.csv").read_text() == render(
        build_partner(network, coffee, Period.parse("2026-11-21", "2026-11-21")), "csv")
    month = json.loads((root / "monthly" / "2026-11" / f"partner-{coffee}.json").read_text())
    assert month == build_partner(network, coffee, Period.month(2026, 11))
    assert month["money"]["totals"]["net_minor"] == -538      # −580 + 42
    assert json.loads((root / "monthly" / "2026-11" / "network.json").read_text()) == build_network(
        network, Period.month(2026, 11))
    index = json.loads((day / "index.json").read_text())
    assert len(index["files"]) == 12 and index["period"] == {"from": "2026-11-21", "to": "2026-11-21", "cycles": 1}
    # a cycle with entries that is not settled holds its month back
    clock.set(datetime(2026, 12, 31, 3, 0, tzinfo=timezone.utc))
    network.earn(coffee, coalition["m3"], "late", points=5)
    clock.set(datetime(2027, 1, 2, 3, 0, tzinfo=timezone.utc))
    assert publish_due(network) == {"cycles": [], "months": []}
    while network.settle_due():  # the job, run after run: every day since, the quiet ones too, oldest first
        pass
    published = {"cycles": [], "months": []}
    while (written := publish_due(network))["cycles"] or written["months"]:
        published = {key: published[key] + written[key] for key in published}
    days = [date(2026, 12, 1) + timedelta(days=n) for n in range(32)]  # through 2027-01-01: it ended before now
    assert published == {"cycles": [d.isoformat() for d in days if d != date(2026, 12, 15)], "months": ["2026-12"]}
    assert not [p for p in (root / "monthly").iterdir() if p.name.startswith(".")]  # no staging left behind


def test_a_long_history_is_caught_up_a_few_sets_per_run(network, coalition):
    for n in range(9):  # the quiet days of November, as the settlement job settles them
        network.settle(date(2026, 11, 22) + timedelta(days=n))
    assert publish_due(network, limit=8) == {"cycles": ["2026-11-20", "2026-11-21"] + [
        (date(2026, 11, 22) + timedelta(days=n)).isoformat() for n in range(6)], "months": []}
    assert publish_due(network, limit=8) == {"cycles": ["2026-11-28", "2026-11-29", "2026-11-30", "2026-12-15"],
                                             "months": ["2026-11"]}
    assert publish_due(network, limit=8) == {"cycles": [], "months": []}
