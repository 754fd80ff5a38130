"""The report scenario's set-based month (``--scale full`` seeds 10 million entries this way), at a small size.

PostgreSQL only (the seeder writes with generate_series). The seeded ledger must pass the balance
checks of ``pointsnet verify``; the scenario itself fails unless the reports from the roll-ups and
directly from the ledger are identical.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
from rich.console import Console
from sqlalchemy import text

from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="the set-based month is seeded on PostgreSQL")


def test_seeded_month_passes_verify_and_spreads_over_the_cycles():
    from services.bench import fresh_database
    from services.bench_report_seed import PARTNER_SHARE, record_settled, seed_month
    from shared.clock import FixedClock
    from shared.config import Settings
    from shared.db.migrate import upgrade
    from shared.ledger.verify import CHECKS
    from shared.network import Network
    from shared.partners.contracts import ContractTerms

    with fresh_database(PG_URL) as (url, workdir):
        upgrade(url)
        clock = FixedClock(datetime(2026, 4, 1, 2, tzinfo=timezone.utc))
        network = Network(Settings(data_dir=workdir), database_url=url, clock=clock)
        try:
            partners = [network.create_partner(f"P{i}", ContractTerms("postpaid", "1", "0.1", "0.05"))["partner_id"]
                        for i in range(4)]
            contracts = network.tx(lambda tx: [tx.session.execute(text(
                "SELECT id FROM contracts WHERE partner_id = :p"), {"p": p}).scalar_one() for p in partners])
            month = seed_month(network, partners, contracts, year=2026, month=4, days=30, partner_entries=3_000,
                               members=100)
            assert month.partner_entries >= 3_000 and month.entries == 2 * month.pairs
            assert month.partner_entries * PARTNER_SHARE[1] == month.entries * PARTNER_SHARE[0]
            clock.set(datetime(2026, 5, 1, 2, tzinfo=timezone.utc))
            for cycle in month.cycles:
                record_settled(network, cycle)

            def facts(tx):
                offences = {name: tx.session.execute(text(f"{sql} LIMIT 5")).all() for name, (_, sql) in CHECKS.items()}
                per_cycle = tx.session.execute(text(
                    "SELECT COUNT(DISTINCT cycle_date), MIN(cycle_date), MAX(cycle_date) FROM entries")).one()
                lines = dict(tx.session.execute(text(
                    "SELECT kind, COUNT(*) FROM obligation_lines GROUP BY kind")).all())
                net = tx.session.execute(text("SELECT COALESCE(SUM(net_minor), 0) FROM settlements")).scalar_one()
                open_points = tx.session.execute(text("SELECT SUM(remaining) FROM lots")).scalar_one()
                available = tx.session.execute(text("SELECT SUM(available) FROM members")).scalar_one()
                return offences, per_cycle, lines, net, open_points, available
            offences, per_cycle, lines, net, open_points, available = network.tx(facts, readonly=True)
            assert {name: rows for name, rows in offences.items() if rows} == {}
            assert per_cycle == (30, month.cycles[0], month.cycles[-1])
            # every earn pays its issuance fee; the 3 cross-partner burns of every 20 pairs a redemption and its fee
            assert lines == {"issuance_fee": month.pairs, "redemption": 3 * month.pairs // 20,
                             "redemption_fee": 3 * month.pairs // 20}
            assert net == 0 and open_points == available > 0
        finally:
            network.close()


def test_report_scenario_on_a_seeded_month_checks_both_paths():
    from services.bench_report import scenario_report

    result = scenario_report(PG_URL, scale="small", batch_size=1000, members=100, console=Console(file=io.StringIO()),
                             seeded_entries=3_000)
    assert result["seeded"] and result["direct_checked"] and result["cycles"] == 30
    assert result["partner_entries"] >= 3_000 and result["partner_month_member_rows"] > 0
    assert result["rollup_cycles_s"] > 0 and "partner_report_closed_month_direct_s" in result
