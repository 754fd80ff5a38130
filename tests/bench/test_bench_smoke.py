"""``pointsnet bench`` at ``--scale small``: each scenario runs end to end and its results are right.

These are smoke tests of the benchmark code at the size that runs in seconds; they assert what the
scenarios computed (every lot expired, settlement files that add up, COPY wrote what the post wrote),
never how fast. Each scenario makes its own fresh database: a SQLite file, or on the test
PostgreSQL server when POINTSNET_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from services.bench import EXPIRE_LOTS, PEERS_EVENTS, SETTLE_SCALES, scenario_expire, scenario_settle
from tests.conftest import PG_URL


def quiet() -> Console:
    return Console(file=io.StringIO())


def test_expire_small_expires_every_due_lot():
    result = scenario_expire(PG_URL, lots=EXPIRE_LOTS["small"], members=200, console=quiet())
    # the scenario itself fails unless no lot is left open and every point went to network:expired
    assert result["lots"] == EXPIRE_LOTS["small"] and result["lots_per_s"] > 0


def test_settle_small_writes_files_that_add_up():
    lines, partners = SETTLE_SCALES["small"]
    result = scenario_settle(PG_URL, scale="small", console=quiet())
    # checked inside: each line in the statement of every partner it names, net positions equal to the
    # exact sums rounded once (summing to zero), and verify finds nothing in the seeded ledger
    assert result["partners"] == partners
    assert abs(result["obligation_lines"] - lines) <= lines // 100
    assert result["entries"] > 0 and result["elapsed_s"] > 0


@pytest.mark.skipif(not PG_URL, reason="the peers scenario compares with PostgreSQL's COPY")
def test_peers_small_copies_exactly_what_the_batch_post_wrote():
    from services.bench_peers import COPY_RUNS, LEDGER_TABLES, scenario_peers

    result = scenario_peers(PG_URL, events=PEERS_EVENTS["small"], batch_size=500, members=200, console=quiet())
    # every table (a) inserted into, the ledger's own and the tier history (counted before and after (a))
    assert set(LEDGER_TABLES) | {"member_tier_history"} <= set(result["rows_by_table"])
    assert result["accepted_earns"] + result["accepted_burns"] == result["events"] - result["refused"]
    # every event that was not refused wrote one entry and one transfer
    assert result["rows_by_table"]["entries"] == result["events"] - result["refused"]
    assert result["rows_by_table"]["transfers"] == result["rows_by_table"]["entries"]
    assert result["rows"] == sum(result["rows_by_table"].values()) and result["ratio_a_c"] > 0
    # (c) is the median of its runs (each checked to have copied every row)
    runs = result["copy_runs_s"]
    assert len(runs) == COPY_RUNS and result["copy_s"] == sorted(runs)[COPY_RUNS // 2]


def test_peers_needs_postgres():
    from services.bench_peers import PeersNeedPostgres, scenario_peers

    with pytest.raises(PeersNeedPostgres):
        scenario_peers(None, events=10, batch_size=10, members=10, console=quiet())


def test_bench_help_names_every_scenario():
    from services.bench import SCENARIOS
    from services.cli import BENCH_SCENARIOS
    from tests.cli.inprocess import pointsnet

    assert BENCH_SCENARIOS.split(", ") == list(SCENARIOS)
    shown = " ".join(pointsnet("bench", "--help").stdout.split())
    assert all(name in shown for name in SCENARIOS)


def test_history_small_checks_what_it_built():
    from services.bench_history import HISTORY_SIZES, SAMPLES, scenario_history

    result = scenario_history(PG_URL, size=HISTORY_SIZES["small"], console=quiet())
    # checked inside: the burns took the members' earliest open lots, the campaign's and the float's kept
    # totals equal their rows, the bounded reads give what the unbounded ones give, and verify finds nothing
    assert result["history"] == HISTORY_SIZES["small"] and result["samples"] == SAMPLES
    assert result["campaign_awards"] >= HISTORY_SIZES["small"]
    assert result["holds"] == 30 and result["shop_entries"] > 4 * HISTORY_SIZES["small"]
    assert all(result[key] > 0 for key in result if key.endswith("_ms"))


@pytest.mark.postgres
def test_history_lists_the_shops_entries_while_another_database_holds_a_transaction_open():
    """The scenario's check of the shop's transactions lists them as GET /v1/transactions does: a
    transaction held open in another database on the server (another test worker's, say) does not hold
    the listing's horizon back, which hid the shop's last entries (IndexError in CI)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from services.bench_history import HISTORY_SIZES, scenario_history
    from shared.db.database import normalise_url

    other = create_engine(make_url(normalise_url(PG_URL)).set(database="postgres"))
    with other.connect() as held:
        held.execute(text("SELECT pg_current_xact_id()"))  # an xid, running until the block ends
        result = scenario_history(PG_URL, size=HISTORY_SIZES["small"], console=quiet())
        held.rollback()
    other.dispose()
    assert result["shop_entries"] > 4 * HISTORY_SIZES["small"]
