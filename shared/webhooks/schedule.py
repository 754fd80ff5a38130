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


def _fewest_tries() -> int:
    """The fewest tries the schedule makes in its window when nothing interrupts it: every delay at
    its longest, tries until one falls at or past the window's end (12)."""
    at, tries = timedelta(0), 1
    while at < RETRY_WINDOW:
        at += RETRY_DELAYS[min(tries, len(RETRY_DELAYS)) - 1] * (1 + JITTER)
        tries += 1
    return tries


MIN_TRIES = _fewest_tries()


def next_attempt_at(attempts: int, retry_from: datetime, failed_at: datetime,
                    rng: random.Random | None = None) -> datetime | None:
    """The time of the next try after ``attempts`` failed ones, or None: dead-letter it.

    Deliveries are retried for at least ``RETRY_WINDOW`` after ``retry_from`` and at least
    ``MIN_TRIES`` times: a failure at or past the end of the window is the last one once the message
    has had the tries the schedule makes in its window. Without the count, time the delivery job did
    not run (workers down for a day) used up the window: a message that failed its fourth try, then
    waited out an outage, was dead after one more try instead of about nine.
    """
    if failed_at - retry_from >= RETRY_WINDOW and attempts >= MIN_TRIES:
        return None
    delay = RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1]
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return failed_at + delay * factor
