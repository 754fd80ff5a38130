"""The jobs go on when the host's wall clock is stepped back (found by the host-clock-steps review).
APScheduler times its intervals on the wall clock, so after a step back every job waited out the step —
ten minutes back, ten minutes without sealing, checkpoints, webhooks, hold timeouts or settlement — and
after a step forward that NTP corrected a moment later, the whole of the forward step."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import apscheduler.schedulers.base as scheduler_base

import shared.jobs.runner as runner_module
from shared.jobs.runner import Job, JobRunner


class SteppedClock(datetime):
    """``datetime`` whose ``now`` reads the host's clock after a step (``step``)."""
    step = timedelta(0)

    @classmethod
    def now(cls, tz=None):
        return datetime.now(tz) + cls.step


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_step_of_the_clock_back_runs_every_job_at_once_and_they_keep_their_interval(network, monkeypatch):
    monkeypatch.setattr(scheduler_base, "datetime", SteppedClock)
    monkeypatch.setattr(runner_module, "datetime", SteppedClock)
    monkeypatch.setattr(SteppedClock, "step", timedelta(0))
    ran: list[float] = []
    runner = JobRunner(network.db, [Job("probe", 2.0, lambda: ran.append(time.monotonic()))])
    runner.start()
    try:
        assert wait_for(lambda: len(ran) >= 1, 10)
        SteppedClock.step = timedelta(minutes=-10)  # NTP steps the host's clock back ten minutes
        before = len(ran)
        assert wait_for(lambda: len(ran) >= before + 2, 10), ran  # at once, then every 2 s: not in 10 minutes
        SteppedClock.step = timedelta(days=2)  # forward two days (a VM resumed) ...
        assert wait_for(lambda: len(ran) >= before + 3, 10), ran
        SteppedClock.step = timedelta(0)  # ... and NTP corrects it
        after = len(ran)
        assert wait_for(lambda: len(ran) >= after + 2, 10), ran  # not two days later
    finally:
        runner.shutdown()
