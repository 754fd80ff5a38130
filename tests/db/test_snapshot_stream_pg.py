"""``stream_in_snapshot`` (PostgreSQL): the jobs' results come in order, from other connections in
the unit's snapshot, never more than ``workers + ahead`` at a time; a failing job's error comes where
its result would have, and whatever was made and not taken is handed to ``discard``."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from shared.db import snapshot
from shared.db.snapshot import stream_in_snapshot
from tests.factories import make_member, make_partner

pytestmark = pytest.mark.postgres


def _snapshot_threads() -> int:
    """The stream's helper threads alive (named snapshot-N): other threads of the process — an earlier
    test's server or worker thread still winding down — come and go on their own."""
    return sum(thread.name.startswith("snapshot-") for thread in threading.enumerate())


@pytest.fixture
def ledger(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    for i in range(5):
        network.earn(partner, member, f"e{i}", points=10)
    return partner, member


def test_results_come_in_order_from_other_connections_in_the_units_snapshot(network, ledger):
    partner, member = ledger
    together = threading.Barrier(2, timeout=30)  # jobs 0 and 1 run at once: on two helpers' connections

    def job(n):
        def run(connection):
            if n < 2:
                together.wait()
            time.sleep(0.02 * (n % 3))  # finishing out of order
            return (n, connection.execute(text("SELECT COUNT(*) FROM entries")).scalar_one(),
                    connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
        return run

    def unit(tx):
        main = tx.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        network.earn(partner, member, "committed-before", points=5)  # READ COMMITTED: the unit sees it
        results = stream_in_snapshot(tx, [job(n) for n in range(12)], 3)
        first = next(results)
        network.earn(partner, member, "committed-meanwhile", points=5)  # after the snapshot: unseen
        return main, [first, *results]

    main, results = network.tx(unit)
    assert [n for n, _, _ in results] == list(range(12))
    assert {count for _, count, _ in results} == {6}
    pids = {pid for _, _, pid in results}
    assert main not in pids and 1 < len(pids) <= 3


@pytest.mark.parametrize("workers, ahead", [(2, 0), (2, 2), (3, 1)])
def test_never_more_than_workers_plus_ahead_results_are_made_and_not_taken(network, ledger, workers, ahead):
    lock, state = threading.Lock(), {"out": 0, "most": 0}

    def job(connection):
        with lock:
            state["out"] += 1
            state["most"] = max(state["most"], state["out"])
        return connection.execute(text("SELECT 1")).scalar_one()

    def unit(tx):
        taken = 0
        for _ in stream_in_snapshot(tx, [job] * 20, workers, ahead=ahead):
            time.sleep(0.01)  # a slow consumer: the workers run ahead as far as they may
            with lock:
                state["out"] -= 1
            taken += 1
        return taken

    assert network.tx(unit, readonly=True) == 20
    assert 2 <= state["most"] <= workers + ahead  # ahead of a slow caller, never further than allowed


def test_a_failing_job_raises_where_its_result_would_come_and_the_rest_is_discarded(network, ledger):
    made, discarded = set(), []

    def job(n):
        def run(connection):
            if n == 5:
                raise ValueError("job 5 fails")
            connection.execute(text("SELECT 1"))
            made.add(n)
            return n
        return run

    def unit(tx):
        taken = []
        with pytest.raises(ValueError, match="job 5 fails"):
            for n in stream_in_snapshot(tx, [job(n) for n in range(40)], 2, ahead=3, discard=discarded.append):
                taken.append(n)
        return taken

    threads = _snapshot_threads()
    taken = network.tx(unit, readonly=True)
    assert taken == [0, 1, 2, 3, 4]
    assert sorted(taken + discarded) == sorted(made)  # nothing made is lost: taken or discarded
    assert len(made) < 40  # no new job started once the failure was raised
    assert _snapshot_threads() == threads  # the workers are gone


def test_stopping_early_hands_what_was_made_to_discard(network, ledger):
    made, discarded = [], []

    def job(n):
        def run(connection):
            made.append(n)
            return n
        return run

    def unit(tx):
        results = stream_in_snapshot(tx, [job(n) for n in range(50)], 2, ahead=4, discard=discarded.append)
        taken = [next(results) for _ in range(3)]
        time.sleep(0.1)  # the workers fill their slots
        results.close()
        return taken

    taken = network.tx(unit, readonly=True)
    assert taken == [0, 1, 2]
    assert sorted(taken + discarded) == sorted(made)
    assert len(made) <= 3 + 2 + 4


def test_one_worker_runs_the_jobs_in_the_unit(network, ledger):
    def job(connection):
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()

    def unit(tx):
        return tx.session.execute(text("SELECT pg_backend_pid()")).scalar_one(), list(
            stream_in_snapshot(tx, [job] * 3, 1))

    main, pids = network.tx(unit, readonly=True)
    assert pids == [main] * 3


def test_a_helper_that_cannot_import_the_snapshot_leaves_the_jobs_to_the_others(network, ledger, monkeypatch):
    begin, calls, lock = snapshot._begin_in, [], threading.Lock()

    def first_fails(connection, snapshot_id, settings):
        with lock:
            calls.append(snapshot_id)
            first = len(calls) == 1
        if first:
            raise RuntimeError("no such snapshot")
        begin(connection, snapshot_id, settings)

    monkeypatch.setattr(snapshot, "_begin_in", first_fails)

    def job(n):
        def run(connection):
            return n, connection.execute(text("SELECT pg_backend_pid()")).scalar_one(), \
                connection.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
        return run

    results = network.tx(lambda tx: list(stream_in_snapshot(tx, [job(n) for n in range(10)], 2)), readonly=True)
    assert [n for n, _, _ in results] == list(range(10))
    assert len({pid for _, pid, _ in results}) == 1  # the one helper left did them all
    assert {timeout for _, _, timeout in results} == {"30s"}  # a helper never waits forever behind DDL


def test_when_no_helper_can_start_the_error_comes_and_no_thread_is_left(network, ledger, monkeypatch):
    def fails(connection, snapshot_id, settings):
        raise RuntimeError("no such snapshot")

    monkeypatch.setattr(snapshot, "_begin_in", fails)
    threads = _snapshot_threads()

    def unit(tx):
        with pytest.raises(RuntimeError, match="no such snapshot"):
            list(stream_in_snapshot(tx, [lambda connection: 1] * 5, 3))

    network.tx(unit, readonly=True)
    assert _snapshot_threads() == threads
