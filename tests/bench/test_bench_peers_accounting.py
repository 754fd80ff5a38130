"""``pointsnet bench peers`` (b): python-accounting posting the journal entries the batch post wrote.

PostgreSQL only, and only where the optional ``bench`` extra is installed (CI never installs it, so these
skip there). They assert what (b) checked and recorded, never how fast.
"""

from __future__ import annotations

import io
from importlib import metadata

import pytest
from rich.console import Console

pytest.importorskip("python_accounting")
pytestmark = pytest.mark.postgres

from services import bench_peers_accounting as peer  # noqa: E402
from services.bench import PEERS_EVENTS, fresh_database  # noqa: E402
from services.bench_peers import scenario_peers  # noqa: E402
from tests.conftest import PG_URL  # noqa: E402


def quiet() -> Console:
    return Console(file=io.StringIO())


def test_peers_small_posts_a_leading_subset_with_python_accounting():
    # the path of a full run: (b) posts (a)'s first entries only and projects its rate per entry
    result = scenario_peers(PG_URL, events=PEERS_EVENTS["small"], batch_size=500, members=200, console=quiet(),
                            accounting_entries=300)
    # checked inside (the scenario fails otherwise): the library's trial balance gives every account what
    # our transfers sum to, its debit and credit totals agree, its ledger moved as many points each side
    entries = result["rows_by_table"]["entries"]
    assert result["accounting_version"] == metadata.version("python-accounting")
    assert result["accounting_entries"] == 300 and result["accounting_subset"] is True
    assert result["accounting"] == (f"version {result['accounting_version']}, the first 300 of {entries:,} "
                                    "entries (rate projected over all)")
    assert result["accounting_s"] > 0 and result["accounting_accounts"] > 2
    assert result["accounting_setup_s"] > 0 and result["accounting_check_s"] > 0
    # events/s: all of (a)'s entries at the subset's rate per entry, over (a)'s events (as (c) counts them)
    projected_s = result["accounting_s"] * entries / 300
    assert result["accounting_events_per_s"] == pytest.approx(result["events"] / projected_s, abs=0.1)
    assert result["ratio_a_b"] == pytest.approx(result["events_per_s"] / result["accounting_events_per_s"],
                                                rel=1e-2)
    assert result["ratio_a_c"] > 0 and result["copy_runs_s"]


def test_peers_posts_every_entry_when_they_are_few():
    result = scenario_peers(PG_URL, events=300, batch_size=100, members=50, console=quiet())
    entries = result["rows_by_table"]["entries"]
    assert entries < peer.ACCOUNTING_ENTRIES
    assert result["accounting_entries"] == entries and result["accounting_subset"] is False
    assert result["accounting"].endswith(f"all {entries:,} entries")
    assert result["accounting_entries_per_s"] == pytest.approx(entries / result["accounting_s"], rel=1e-2)


def test_without_python_accounting_the_scenario_says_so(monkeypatch):
    monkeypatch.setattr(peer, "installed_version", lambda: None)
    result = scenario_peers(PG_URL, events=200, batch_size=100, members=50, console=quiet())
    assert result["accounting"].startswith("not installed (pip install '.[bench]'")
    assert "ratio_a_b" not in result and result["ratio_a_c"] > 0


def test_compound_entries_and_the_check():
    # an entry of two transfers is one compound JournalEntry; check() refuses balances that differ
    entries = [["e1", [["partner:P:issued", "member:m1", 100]]],
               ["e2", [["member:m1", "partner:P:redeemed", 30], ["member:m2", "network:promotions", 5]]]]
    kinds = {"partner:P:issued": "partner_issued", "member:m1": "member", "member:m2": "member",
             "partner:P:redeemed": "partner_redeemed", "network:promotions": "network"}
    with fresh_database(PG_URL) as (url, _):
        figures = peer.run_child(url, entries, kinds, quiet())
    peer.check(figures, entries, kinds)
    assert figures["journal_entries"] == 2 and figures["accounts"] == 5
    assert {k: int(float(v)) for k, v in figures["closing_balances"].items()} == {
        "partner:P:issued": 100, "member:m1": -70, "member:m2": 5, "partner:P:redeemed": -30,
        "network:promotions": -5}
    wrong = dict(figures, closing_balances=dict(figures["closing_balances"], **{"member:m1": "-71"}))
    with pytest.raises(AssertionError, match="trial balance differs"):
        peer.check(wrong, entries, kinds)
    # by account type: issued +100 (current asset), the members and redeemed -95 (current liabilities),
    # promotions -5 (equity)
    assert (figures["trial_balance_debit"], figures["trial_balance_credit"]) == ("100.0000", "100.0000")
    with pytest.raises(AssertionError, match="trial balance totals"):
        peer.check(dict(figures, trial_balance_credit="105"), entries, kinds)
    with pytest.raises(AssertionError, match="ledger holds"):
        peer.check(dict(figures, ledger_credit="134"), entries, kinds)
