"""On PostgreSQL a job runs only in the elected leader; with the database unreachable the election
itself cannot be held. Connecting was outside the election's error handling: every job's run raised
into APScheduler ("Job … raised an exception", naming no job), ``pointsnet_job_runs_total{outcome=
"failed"}`` stayed at 0 and ``leader election failed`` was never logged, so an alert on failed job runs
stayed silent for the whole outage (docs/operations.md, "Logs and metrics")."""

from __future__ import annotations

import logging
import socket

from prometheus_client import REGISTRY

from shared.config import Settings
from shared.jobs.runner import Job, JobRunner
from shared.network import Network


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the probe is: nothing listens there


def failed_runs(job: str) -> float:
    return REGISTRY.get_sample_value("pointsnet_job_runs_total", {"job": job, "outcome": "failed"}) or 0.0


def test_a_job_that_cannot_elect_its_leader_counts_as_failed_and_says_why(tmp_path, caplog):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nowhere?connect_timeout=2"
    network = Network(Settings(data_dir=tmp_path), database_url=url)
    ran = []
    runner = JobRunner(network.db, [Job("unreachable_probe", 60, lambda: ran.append(1))])
    before = failed_runs("unreachable_probe")
    try:
        with caplog.at_level(logging.WARNING, logger="pointsnet.jobs"):
            assert runner.run_job(runner.jobs[0]) is False
        assert ran == []
        assert failed_runs("unreachable_probe") == before + 1
        assert any(r.getMessage().startswith("leader election failed: OperationalError") for r in caplog.records), \
            [r.getMessage() for r in caplog.records]
        runner.watch_leadership()  # the scheduler's other caller: no exception either
    finally:
        network.close()
