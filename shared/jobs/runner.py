"""The job runner: APScheduler in every process, but only the elected leader acts.

Leadership on PostgreSQL is a session-level advisory lock held on a dedicated
connection: if the leader dies, its connection closes, the lock is released and
the next process to try takes over. On SQLite there is one process, the leader.
Jobs read what is due from the database, so work missed while no leader ran is
caught up on start (every job runs once immediately).

Leadership is also a fence for work in flight (PostgreSQL). A job's units of work
run on other pooled connections than the lock's, so a leader whose lock connection
dies mid-job would otherwise go on committing after another process took over and
ran the same job. So while a job runs, every unit of work it starts (in the job's
thread) is fenced:

* its transaction first takes a transaction-level advisory lock named after the job
  (``advisory_key("job", name)``, blocking): the same job's units in two processes
  never overlap — one that is still in flight when the other leader starts makes it
  wait, and the waiter then sees what it committed. A unit with a snapshot
  (REPEATABLE READ, the read-only units) first waits for that lock on another
  connection, so its snapshot is taken after such a unit ended;
* then, and again just before it commits, it checks in ``pg_locks`` that this
  process's lock connection (its backend pid) still holds the leader lock, and
  raises ``LostLeadership`` otherwise, so the unit rolls back.

A deposed leader's unit therefore either committed before the new leader's unit of
that job began, or commits nothing. (Units already committed before it lost the
lock stay: each is complete, and jobs read what is due.) A unit nested in another
of the same job, in the same thread, does not wait again for the lock its outer
unit holds. On SQLite (one process) nothing of this applies.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from shared.db.advisory import advisory_key
from shared.db.database import Database
from shared.log_redaction import log_failure
from shared.observability import observe_job

log = logging.getLogger("pointsnet.jobs")
LEADER_LOCK = 7242002


LEADERSHIP_CHECK_S = 2.0
# APScheduler times its intervals on the wall clock: after a step of the host's clock back (NTP correcting
# a clock that ran fast, a VM resumed) every job waited out the step, a two-hour step two hours without
# sealing, checkpoints, webhooks, hold timeouts or settlement. A thread on the monotonic clock watches
# the wall clock's offset from it and, when it moves by CLOCK_STEP_S or more, runs every job at once and
# starts its schedule afresh from there.
CLOCK_WATCH_S = 1.0
CLOCK_STEP_S = 5.0

# Whether the session-level leader lock is held by the given backend (this process's lock connection).
HOLDS_LEADER_LOCK = text("""
    SELECT EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.granted AND l.pid = :pid
                     AND l.classid = 0 AND l.objid = :k AND l.objsubid = 1
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
""")
JOB_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
SNAPSHOT_ISOLATION = {"REPEATABLE READ", "SERIALIZABLE"}


class LostLeadership(RuntimeError):
    """A job's unit of work found this process no longer leads: the unit rolls back."""


@dataclass(frozen=True)
class Job:
    name: str
    interval_s: float
    run: Callable[[], object]


class LeaderElection:
    def __init__(self, db: Database):
        self.db = db
        self._conn = None
        self._lock = threading.Lock()
        self.pid: int | None = None  # the lock connection's backend pid while this process leads
        # why the last election could not be held (the database unreachable), or None: a job that did not
        # run for it failed (``JobRunner.run_job``), unlike one a standby leaves to the leader
        self.failure: BaseException | None = None

    def is_leader(self) -> bool:
        if self.db.dialect != "postgresql":
            return True
        with self._lock:
            self.failure = None
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))
                    return True
                except Exception:  # connection lost: so is the lock
                    log.warning("leader connection lost; standing down")
                    self._drop()
            conn = None
            try:
                conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK}).scalar_one():
                    self._conn = conn
                    self.pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                    log.info("this process is the job leader")
                    return True
            except Exception as exc:  # the database unreachable (connecting is part of the election)
                self.failure = exc
                log_failure(log, "leader election failed", exc=exc)
            if conn is not None:
                conn.close()
            return False

    def _drop(self) -> None:
        try:
            self._conn.invalidate()
        except Exception:
            pass
        self._conn = None
        self.pid = None

    def resign(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK})
                    self._conn.close()
                except Exception:
                    self._drop()
                self._conn = None
                self.pid = None

    def still_leads(self, connection) -> bool:
        """Inside a unit's transaction: does this process's lock connection still hold the leader lock?"""
        pid = self.pid
        return pid is not None and bool(
            connection.execute(HOLDS_LEADER_LOCK, {"pid": pid, "k": LEADER_LOCK}).scalar_one())


class _Fence:
    """The job running in this thread: its units of work are fenced (see the module docstring)."""

    def __init__(self, db: Database, election: LeaderElection, name: str):
        self.db, self.election, self.name = db, election, name
        self.key = advisory_key("job", name)
        self.open = 0  # this thread's fenced transactions still open (the outer one holds the job lock)

    def check(self, connection) -> None:
        if not self.election.still_leads(connection):
            raise LostLeadership(f"job {self.name}: this process no longer holds the leader lock")


_running = threading.local()


@event.listens_for(Session, "after_begin")
def _fence_begin(session, _transaction, connection) -> None:
    fence: _Fence | None = getattr(_running, "fence", None)
    if fence is None or connection.engine.pool is not fence.db.engine.pool or "job_fence" in session.info:
        return  # not a job's unit, or a savepoint of a unit already fenced (after_begin fires for it too)
    if fence.open == 0:
        if connection.get_execution_options().get("isolation_level") in SNAPSHOT_ISOLATION:
            # wait out the other process's unit before this transaction's snapshot is taken
            with fence.db.engine.connect() as other:
                other.execute(JOB_LOCK, {"k": fence.key})
                other.rollback()
        connection.execute(JOB_LOCK, {"k": fence.key})
    fence.open += 1
    session.info["job_fence"] = fence
    fence.check(connection)


@event.listens_for(Session, "before_commit")
def _fence_commit(session) -> None:
    fence = session.info.get("job_fence")
    if fence is not None:
        session.flush()  # what is left to write first: the check is then the last statement before COMMIT
        fence.check(session.connection())


@event.listens_for(Session, "after_transaction_end")
def _fence_end(session, transaction) -> None:
    if transaction.parent is None:
        fence = session.info.pop("job_fence", None)
        if fence is not None:
            fence.open -= 1


def _wall() -> float:
    """The wall clock as the scheduler reads it (``datetime.now``), in seconds."""
    return datetime.now(timezone.utc).timestamp()


class JobRunner:
    def __init__(self, db: Database, jobs: list[Job]):
        self.db = db
        self.jobs = jobs
        self.election = LeaderElection(db)
        self.scheduler = BackgroundScheduler(timezone=timezone.utc)
        self.runs: dict[str, int] = {job.name: 0 for job in jobs}
        self._leading: bool | None = None  # not observed yet: every job runs at start anyway
        self._stopping = threading.Event()
        self._clock_watch: threading.Thread | None = None

    def run_job(self, job: Job) -> bool:
        """Run one job if this process leads; returns whether it ran. An election that could not be held
        (the database unreachable) counts as the job's failed run: on-call sees it in job_runs_total."""
        started = time.perf_counter()
        if not self.election.is_leader():
            if self.election.failure is not None:
                observe_job(job.name, time.perf_counter() - started, "failed", type(self.election.failure).__name__)
            return False
        if self.db.dialect == "postgresql":
            _running.fence = _Fence(self.db, self.election, job.name)
        try:
            outcome = job.run()
        except LostLeadership as exc:
            log.warning("job %s stopped: %s (its unit of work rolled back)", job.name, exc)
            observe_job(job.name, time.perf_counter() - started, "failed", type(exc).__name__)
            return False
        except Exception as exc:
            log_failure(log, "job %s failed", job.name, exc=exc)  # a database error without its values
            observe_job(job.name, time.perf_counter() - started, "failed", type(exc).__name__)
            return False
        finally:
            _running.fence = None
        self.runs[job.name] += 1
        observe_job(job.name, time.perf_counter() - started, "ok", str(outcome)[:200])
        return True

    def start(self) -> None:
        now = datetime.now(timezone.utc)
        for job in self.jobs:
            self.scheduler.add_job(self.run_job, "interval", args=[job], seconds=job.interval_s, id=job.name,
                                   next_run_time=now, max_instances=1, coalesce=True, misfire_grace_time=None)
        self.scheduler.add_job(self.watch_leadership, "interval", seconds=LEADERSHIP_CHECK_S, id="_leadership",
                               next_run_time=now, max_instances=1, coalesce=True)
        self.scheduler.start()
        self._clock_watch = threading.Thread(target=self._watch_clock, name="pointsnet-clock-watch", daemon=True)
        self._clock_watch.start()

    def _watch_clock(self) -> None:
        offset = _wall() - time.monotonic()
        while not self._stopping.wait(CLOCK_WATCH_S):
            moved = _wall() - time.monotonic() - offset
            offset += moved
            if abs(moved) >= CLOCK_STEP_S and self.scheduler.running:
                log.warning("the host's clock stepped %+.0f s: every job runs now, its schedule starting afresh",
                            moved)
                self.run_every_job_now()

    def run_every_job_now(self) -> None:
        now = datetime.now(timezone.utc)
        for name in [job.name for job in self.jobs] + ["_leadership"]:
            self.scheduler.modify_job(name, next_run_time=now)

    def watch_leadership(self) -> None:
        """A standby that becomes leader (the old one died or stopped) runs every job at once,
        so a settlement interrupted by the old leader's death resumes within seconds."""
        leading = self.election.is_leader()
        if leading and self._leading is False:  # a standby that has just taken over
            now = datetime.now(timezone.utc)
            for job in self.jobs:
                self.scheduler.modify_job(job.name, next_run_time=now)
        self._leading = leading

    def shutdown(self) -> None:
        self._stopping.set()
        if self._clock_watch is not None:
            self._clock_watch.join()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.election.resign()
