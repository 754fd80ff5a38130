"""The sealing and checkpoint jobs: scheduled with the ledger's jobs, a checkpoint at least every minute."""

from __future__ import annotations

from services.clearing.jobs import ledger_jobs
from shared.jobs.runner import JobRunner
from tests.factories import make_member, make_partner


def test_checkpoints_are_signed_at_least_every_minute_by_the_leader(network, clock):
    jobs = {job.name: job for job in ledger_jobs(network)}
    assert jobs["ledger_checkpoint"].interval_s <= 60
    assert jobs["ledger_sealing"].interval_s <= 60
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "j-1", points=4)
    runner = JobRunner(network.db, list(jobs.values()))
    assert runner.run_job(jobs["ledger_sealing"])
    assert runner.run_job(jobs["ledger_checkpoint"])
    network.earn(partner, member, "j-2", points=4)
    clock.advance(seconds=60)
    assert runner.run_job(jobs["ledger_checkpoint"])
    from shared.transparency.checkpoints import latest
    row = network.tx(latest, readonly=True)
    assert row.tree_size == 2 and "timestamp 2026-11-20T02:01:00Z" in row.note
