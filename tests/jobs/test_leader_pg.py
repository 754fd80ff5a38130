"""Job leadership on PostgreSQL: with several clearing processes only the leader acts, and when the
leader goes away (it resigns, or its database connection dies) another one takes over.

Each runner gets its own ``Network`` (its own engine and pool), as separate processes would.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text

from shared.db.database import normalise_url
from shared.jobs.runner import LEADER_LOCK, Job, JobRunner
from shared.network import Network

pytestmark = pytest.mark.postgres

HOLDER = text("""
    SELECT l.pid FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objid = :k AND l.classid = 0 AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
""")


class Probe:
    """A job that records which runner ran it and when."""

    def __init__(self):
        self.calls: list[tuple[int, float, float]] = []
        self.lock = threading.Lock()

    def job(self, who: int, seconds: float = 0.0) -> Job:
        def run():
            started = time.monotonic()
            if seconds:
                time.sleep(seconds)
            with self.lock:
                self.calls.append((who, started, time.monotonic()))
        return Job("probe", 0.05, run)

    def by(self, who: int) -> int:
        with self.lock:
            return sum(1 for w, _, _ in self.calls if w == who)


@pytest.fixture
def admin(database_url):
    engine = create_engine(normalise_url(database_url), isolation_level="AUTOCOMMIT", pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture
def two_processes(settings, database_url, clock):
    """Two networks on the same database, as two clearing processes would have."""
    networks = [Network(settings, database_url=database_url, clock=clock, pool_size=4) for _ in range(2)]
    runners: list[JobRunner] = []
    yield networks, runners
    for runner in runners:
        runner.shutdown()
    for network in networks:
        network.close()


def leader_pids(admin) -> list[int]:
    with admin.connect() as conn:
        return list(conn.execute(HOLDER, {"k": LEADER_LOCK}).scalars())


def wait_for(condition, timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def test_only_one_of_two_runners_acts_and_the_other_takes_over_when_it_resigns(two_processes, admin):
    networks, runners = two_processes
    probe = Probe()
    runners += [JobRunner(n.db, [probe.job(i)]) for i, n in enumerate(networks)]

    ran = [[runner.run_job(runner.jobs[0]) for runner in runners] for _ in range(5)]

    assert all(sorted(r) == [False, True] for r in ran), ran  # each round: exactly one acts ...
    leader = ran[0].index(True)
    assert all(r.index(True) == leader for r in ran)  # ... and it stays the same one
    assert probe.by(leader) == 5 and probe.by(1 - leader) == 0
    assert len(leader_pids(admin)) == 1

    runners[leader].shutdown()  # the leader resigns (process stopping)

    follower = runners[1 - leader]
    assert follower.run_job(follower.jobs[0]), "the other runner must take over once the leader resigned"
    assert probe.by(1 - leader) == 1
    assert not runners[leader].run_job(runners[leader].jobs[0])  # back again, it is now the follower
    assert probe.by(leader) == 5
    assert len(leader_pids(admin)) == 1


def test_the_other_runner_takes_over_when_the_leaders_connection_dies(two_processes, admin):
    networks, runners = two_processes
    probe = Probe()
    runners += [JobRunner(n.db, [probe.job(i)]) for i, n in enumerate(networks)]
    assert runners[0].run_job(runners[0].jobs[0])
    assert not runners[1].run_job(runners[1].jobs[0])
    [pid] = leader_pids(admin)

    with admin.connect() as conn:  # the leader's session is killed (network cut, backend crash, failover)
        assert conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar_one()
    assert wait_for(lambda: not leader_pids(admin)), "the dead session's lock must be released"

    assert runners[1].run_job(runners[1].jobs[0]), "the other runner must take over"
    assert not runners[0].run_job(runners[0].jobs[0]), "the old leader must notice it lost the lock and stand down"
    assert not runners[0].run_job(runners[0].jobs[0])
    assert runners[1].run_job(runners[1].jobs[0])
    assert probe.by(0) == 1 and probe.by(1) == 2
    assert len(leader_pids(admin)) == 1


def test_the_old_leader_leads_again_after_its_connection_died_if_nobody_else_did(two_processes, admin):
    networks, runners = two_processes
    probe = Probe()
    runners.append(JobRunner(networks[0].db, [probe.job(0)]))
    assert runners[0].run_job(runners[0].jobs[0])
    [pid] = leader_pids(admin)
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar_one()
    assert wait_for(lambda: not leader_pids(admin))
    assert runners[0].run_job(runners[0].jobs[0]), "a lone runner must re-elect itself on a new connection"
    assert leader_pids(admin) and leader_pids(admin) != [pid]


def test_scheduled_runners_act_one_at_a_time_and_hand_over_on_shutdown_and_on_a_dead_connection(
        two_processes, admin):
    networks, runners = two_processes
    probe = Probe()
    runners += [JobRunner(n.db, [probe.job(i, seconds=0.01)]) for i, n in enumerate(networks)]
    for runner in runners:
        runner.start()  # both schedule the job every 50 ms; both try at once on start

    assert wait_for(lambda: len(probe.calls) >= 5)
    time.sleep(0.3)
    leader = probe.calls[0][0]
    assert probe.by(1 - leader) == 0, "the follower acted while the leader was alive"
    assert len(leader_pids(admin)) == 1

    # 1. the leader's connection dies while its scheduler keeps running
    [pid] = leader_pids(admin)
    kill_started = time.monotonic()
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    killed_at = time.monotonic()
    assert wait_for(lambda: leader_pids(admin) not in ([], [pid])), "nobody took over the dead leader's lock"
    # calls that began half a second after the kill, over at least half a second (the job runs every
    # 50 ms): windows of 0.1-0.3 s were missed on a loaded machine
    time.sleep(1.0)
    with probe.lock:
        after = [(w, s, e) for w, s, e in probe.calls if s > killed_at + 0.5]
    assert after, "jobs stopped running after the leader's connection died"
    assert len({w for w, _, _ in after}) == 1, "both runners acted after the handover"
    leader = after[-1][0]

    # 2. the (possibly new) leader shuts down: the other takes over
    runners[leader].shutdown()
    stopped_at = time.monotonic()
    assert wait_for(lambda: probe.by(1 - leader) > 0 and any(w == 1 - leader and s > stopped_at
                                                             for w, s, _ in probe.calls))
    count_at_stop = probe.by(leader)
    time.sleep(0.3)
    assert probe.by(leader) == count_at_stop, "a runner that shut down kept acting"
    assert len(leader_pids(admin)) == 1

    # while one runner led, no two job runs overlapped across runners
    with probe.lock:
        calls = sorted(probe.calls, key=lambda c: c[1])
    # (not while the kill was under way: the dead leader's job in flight may end after the other took
    # over — only its lock connection is gone: its units of work run on other pooled connections, and
    # it is the runner's fence that keeps them from committing then (the tests below) — and the kill
    # itself can take longer than 0.1 s on a loaded machine, which the window must cover from its start)
    steady = [c for c in calls if not kill_started - 0.1 < c[1] < killed_at + 0.5]
    for (w1, _, e1), (w2, s2, _) in zip(steady, steady[1:]):
        assert w1 == w2 or e1 <= s2, "two runners ran the job at the same time"


def note_writer(networks, who: int, started: threading.Event, before=0.0, inside=0.0,
                entered: threading.Event | None = None):
    """A job of one unit of work that records which runner ran it, in the database; it waits
    ``before`` seconds before its unit begins and ``inside`` seconds within it (``entered`` is set
    once it has written, inside its transaction)."""
    def run():
        started.set()
        time.sleep(before)

        def unit(tx):
            tx.session.execute(text("INSERT INTO checkpoints (tree_size, root_hash, created_at, note) "
                                    "VALUES (0, :r, now(), :n)"), {"r": b"\0" * 32, "n": f"run by {who}"})
            if entered is not None:
                entered.set()
            time.sleep(inside)
        networks[who].tx(unit)
    return Job("probe", 3600, run)


def notes(admin) -> list[str]:
    with admin.connect() as conn:
        return sorted(conn.execute(text("SELECT note FROM checkpoints")).scalars())


def kill_the_leader(admin) -> None:
    [pid] = leader_pids(admin)
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    assert wait_for(lambda: not leader_pids(admin))


def test_a_deposed_leaders_job_commits_nothing_after_it_lost_the_lock(two_processes, admin):
    """Only the lock connection dies: the job's units of work use other pooled connections, so
    without the runner's fence the old leader's job would commit after the new leader ran it."""
    networks, runners = two_processes
    started = threading.Event()
    runners += [JobRunner(n.db, [note_writer(networks, i, started, before=1.5 if i == 0 else 0.0)])
                for i, n in enumerate(networks)]
    ran_old = []
    old = threading.Thread(target=lambda: ran_old.append(runners[0].run_job(runners[0].jobs[0])))
    old.start()
    assert started.wait(5)
    kill_the_leader(admin)
    assert runners[1].run_job(runners[1].jobs[0])  # the standby takes over and acts
    old.join(10)
    assert ran_old == [False], "the deposed leader's job must fail"
    assert notes(admin) == ["run by 1"], "the deposed leader's job committed after the new leader ran it"
    assert len(leader_pids(admin)) == 1


def test_a_deposed_leaders_unit_in_flight_holds_the_new_leader_back_and_then_rolls_back(two_processes, admin):
    """The old leader's unit is inside its transaction when its lock connection dies: the new leader's
    unit of the same job waits for it (the job's transaction-level lock), and it does not commit."""
    networks, runners = two_processes
    started, entered = threading.Event(), threading.Event()
    runners += [JobRunner(n.db, [note_writer(networks, i, started, inside=1.5 if i == 0 else 0.0,
                                             entered=entered if i == 0 else None)])
                for i, n in enumerate(networks)]
    ran_old, ended = [], {}

    def run_old():
        ran_old.append(runners[0].run_job(runners[0].jobs[0]))
        ended[0] = time.monotonic()
    old = threading.Thread(target=run_old)
    old.start()
    assert entered.wait(10)  # inside its transaction now, holding the job's lock
    kill_the_leader(admin)
    assert runners[1].run_job(runners[1].jobs[0])
    ended[1] = time.monotonic()
    old.join(10)
    assert ran_old == [False]
    assert ended[0] <= ended[1], "the new leader's unit ran beside the old leader's"
    assert notes(admin) == ["run by 1"]


def test_a_unit_with_a_snapshot_waits_for_the_other_leaders_unit_before_taking_it(
        two_processes, admin, monkeypatch):
    """The old leader's unit passed its last leadership check, and its lock connection dies before it
    commits: the new leader's units of the same job wait for it, and a read-only (REPEATABLE READ)
    one takes its snapshot only then, so it sees what the old unit committed."""
    networks, runners = two_processes
    in_unit, release, seen = threading.Event(), threading.Event(), []

    def old_job():
        def unit(tx):
            tx.session.execute(text("INSERT INTO checkpoints (tree_size, root_hash, created_at, note) "
                                    "VALUES (0, :r, now(), 'run by 0')"), {"r": b"\0" * 32})
            in_unit.set()
            release.wait(10)
        networks[0].tx(unit)

    def new_job():
        seen.extend(networks[1].tx(lambda tx: list(tx.session.execute(
            text("SELECT note FROM checkpoints")).scalars()), readonly=True))

    runners += [JobRunner(networks[0].db, [Job("probe", 3600, old_job)]),
                JobRunner(networks[1].db, [Job("probe", 3600, new_job)])]
    old = threading.Thread(target=runners[0].run_job, args=(runners[0].jobs[0],))
    old.start()
    assert in_unit.wait(5)
    monkeypatch.setattr(runners[0].election, "still_leads", lambda connection: True)  # checked in time
    kill_the_leader(admin)
    reader = threading.Thread(target=runners[1].run_job, args=(runners[1].jobs[0],))
    reader.start()
    time.sleep(0.5)
    assert reader.is_alive(), "the new leader's unit did not wait for the old leader's"
    release.set()
    old.join(10)
    reader.join(10)
    assert notes(admin) == ["run by 0"]
    assert seen == ["run by 0"], "the new leader's snapshot was taken before the old unit committed"


def test_a_savepoint_in_a_units_work_leaves_the_next_unit_fenced(two_processes, admin):
    """SQLAlchemy begins a savepoint with the same event as a transaction: a unit that takes one must
    not leave the fence counting it as open, or the job's next unit would skip the job's lock."""
    from shared.db.advisory import advisory_key

    networks, runners = two_processes
    held = []

    def run():
        def with_savepoint(tx):
            with tx.session.begin_nested():
                tx.session.execute(text("SELECT 1"))
        networks[0].tx(with_savepoint)
        key = advisory_key("job", "fenced") & 0xFFFFFFFFFFFFFFFF  # pg_locks shows a bigint key in two halves
        held.append(networks[0].tx(lambda tx: tx.session.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() "
            "AND classid = CAST(:hi AS bigint)::oid AND objid = CAST(:lo AS bigint)::oid AND objsubid = 1"),
            {"hi": key >> 32, "lo": key & 0xFFFFFFFF}).scalar_one()))
    runners.append(JobRunner(networks[0].db, [Job("fenced", 60, run)]))
    assert runners[0].run_job(runners[0].jobs[0])
    assert held == [1], "the unit after a savepoint ran without the job's lock"
