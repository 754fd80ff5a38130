"""When a failed delivery is tried again, and when the network gives up on it (pure)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

# Delay after the 1st, 2nd, ... failed attempt; the last one repeats until the window closes.
RETRY_DELAYS = (
    timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=5), timedelta(hours=10),
)
RETRY_WINDOW = timedelta(days=3)
JITTER = 0.1  # each delay is stretched or shrunk by up to 10 %


def next_attempt_at(attempts: int, retry_from: datetime, failed_at: datetime,
                    rng: random.Random | None = None) -> datetime | None:
    """The time of the next try after ``attempts`` failed ones, or None: dead-letter it.

    Deliveries are retried for at least ``RETRY_WINDOW`` after ``retry_from``: a failure at or
    past the end of the window is the last one.
    """
    if failed_at - retry_from >= RETRY_WINDOW:
        return None
    delay = RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1]
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return failed_at + delay * factor
