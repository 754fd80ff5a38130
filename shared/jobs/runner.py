"""The job runner: APScheduler in every process, but only the elected leader acts.

Leadership on PostgreSQL is a session-level advisory lock held on a dedicated
connection: if the leader dies, its connection closes, the lock is released and
the next process to try takes over. On SQLite there is one process, the leader.
Jobs read what is due from the database, so work missed while no leader ran is
caught up on start (every job runs once immediately).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text

from shared.db.database import Database
from shared.observability import observe_job

log = logging.getLogger("pointsnet.jobs")
LEADER_LOCK = 7242002


LEADERSHIP_CHECK_S = 2.0


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

    def is_leader(self) -> bool:
        if self.db.dialect != "postgresql":
            return True
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))
                    return True
                except Exception:  # connection lost: so is the lock
                    log.warning("leader connection lost; standing down")
                    self._drop()
            conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK}).scalar_one():
                    self._conn = conn
                    log.info("this process is the job leader")
                    return True
            except Exception:
                log.exception("leader election failed")
            conn.close()
            return False

    def _drop(self) -> None:
        try:
            self._conn.invalidate()
        except Exception:
            pass
        self._conn = None

    def resign(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK})
                    self._conn.close()
                except Exception:
                    self._drop()
                self._conn = None


class JobRunner:
    def __init__(self, db: Database, jobs: list[Job]):
        self.db = db
        self.jobs = jobs
        self.election = LeaderElection(db)
        self.scheduler = BackgroundScheduler(timezone=timezone.utc)
        self.runs: dict[str, int] = {job.name: 0 for job in jobs}
        self._leading: bool | None = None  # not observed yet: every job runs at start anyway

    def run_job(self, job: Job) -> bool:
        """Run one job if this process leads; returns whether it ran."""
        if not self.election.is_leader():
            return False
        started = time.perf_counter()
        try:
            outcome = job.run()
        except Exception as exc:
            log.exception("job %s failed", job.name)
            observe_job(job.name, time.perf_counter() - started, "failed", type(exc).__name__)
            return False
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
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.election.resign()
