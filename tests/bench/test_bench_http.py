"""The HTTP benchmark scenarios at a tiny scale: they run end to end against a real ``serve-api``
process and their own ledger checks hold (every accepted event exactly once, nothing refused
posted, no invariant broken, the hot member's balance exact). Never timing."""

from __future__ import annotations

import os

import pytest
from rich.console import Console

from services import bench_http

# Each scenario makes (and drops) its own fresh database on this server; unset or empty: temporary SQLite files.
PG_URL = os.environ.get("POINTSNET_TEST_DATABASE_URL") or None


def quiet() -> Console:
    return Console(quiet=True)


def test_batch_ingest_posts_every_accepted_event_once():
    result = bench_http.scenario_batch_ingest(PG_URL, events=300, batch_size=100, members=40, console=quiet())
    assert result["accepted"] + result["refused"] == 300
    assert result["accepted"] > 280 and result["ledger_entries"] == result["accepted"]
    assert result["accepted_earns"] + result["accepted_burns"] == result["accepted"]
    assert 0 < result["accepted_events_per_s"] <= result["events_per_s"]
    assert result["events_per_s"] > 0 and result["in_process_events_per_s"] > 0 and result["http_in_process_ratio"] > 0


def test_single_earn_from_concurrent_clients():
    result = bench_http.scenario_single_earn(PG_URL, requests=48, members=30, console=quiet(), clients=8)
    assert result["refused"] == 0
    # the timed requests apart from the warm-up's, whose earns are in the ledger too
    assert result["accepted"] == 48 and result["warmup_requests"] == result["warmup_accepted"] == 16
    assert result["ledger_entries"] == 48 + 16
    assert 0 < result["p50_ms"] <= result["p99_ms"]


def test_single_earn_fails_when_earns_are_refused(monkeypatch):
    """A refused earn is a fault of the run, never throughput: members the network does not know."""
    prepare = bench_http.prepare
    monkeypatch.setattr(bench_http, "prepare", lambda network, members: (
        prepare(network, 1)[0], [f"mem_unknown{n}" for n in range(members)]))
    with pytest.raises(AssertionError, match=r"single-earn: 12 of 12 earns refused: 12 unknown_member"):
        bench_http.scenario_single_earn(PG_URL, requests=8, members=5, console=quiet(), clients=2)


def test_batch_ingest_fails_on_refusals_other_than_insufficient_points():
    """Only a burn beyond the balance may be refused; anything else fails the run (no server needed)."""
    def answer(*results):
        return {"results": [{"reference": ref, "status": 200, "result": {"points": 5}} if code is None else
                            {"reference": ref, "status": 422, "problem": {"code": code}} for ref, code in results]}

    accepted, refused = bench_http.tally_batch_answers([answer(("E1", None), ("B2", "insufficient_points"))])
    assert accepted == {"E1": 5} and refused == {"B2"}
    with pytest.raises(AssertionError, match=r"refused for other reasons than insufficient points: "
                                             r"2 unknown_member, 1 validation_failed"):
        bench_http.tally_batch_answers([answer(("E1", None), ("E2", "unknown_member")),
                                        answer(("E3", "unknown_member"), ("E4", "validation_failed"))])


def test_hot_member_balance_is_exact():
    result = bench_http.scenario_hot_member(PG_URL, operations=60, console=quiet(), clients=8)
    assert result["earns"] + result["burns"] + result["refused"] == 60
    assert result["balance_exact"] and result["balance"] >= 0


def test_two_api_processes_on_one_port_keep_the_hot_members_balance_exact():
    """``serve-api --workers 2``: requests spread over two processes racing on one member."""
    result = bench_http.scenario_hot_member(PG_URL, operations=60, console=quiet(), clients=8, api_workers=2)
    assert result["api_workers"] == 2
    assert result["earns"] + result["burns"] + result["refused"] == 60
    assert result["balance_exact"] and result["balance"] >= 0
    assert result["server_cpu_per_op_ms"] > 0  # the workers' CPU, counted through their parent
