"""This process's own rate-limit counters count as limits' moving window over its memory storage did."""

from __future__ import annotations

import time

from hypothesis import assume, given, settings, strategies as st
from limits import parse as parse_limit
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from services.partner_api.rate_window import LocalWindow

RATES = ["3/second", "5 per 2 seconds", "1/second", "4/minute"]


@settings(max_examples=150)
@given(rate=st.sampled_from(RATES),
       hits=st.lists(st.tuples(st.floats(0, 1.5, allow_nan=False), st.sampled_from(["p1", "p2"])),
                     min_size=1, max_size=40))
def test_each_hit_is_let_in_or_refused_with_the_reset_limits_gives(rate, hits):
    item = parse_limit(rate)
    now = [1_800_000_000.0]
    real_time, real_monotonic = time.time, time.monotonic
    time.time = lambda: now[0]  # limits counts by the wall clock, its expiry timer reads it too;
    time.monotonic = lambda: now[0]  # ours by the monotonic one: here the two agree
    try:
        reference, ours = MovingWindowRateLimiter(MemoryStorage()), LocalWindow()
        let_in: dict[str, list[float]] = {}
        for gap, key in hits:
            now[0] += gap
            # the two differ only on an entry exactly one period old (limits counts it as it lets in and
            # not as it tells the reset): the property is read off any other moment
            assume(all(abs(now[0] - item.get_expiry() - at) > 1e-6 for at in let_in.get(key, [])))
            allowed = reference.hit(item, key)
            expected = None if allowed else reference.get_window_stats(item, key).reset_time
            assert ours.hit(item, key) == expected
            if allowed:
                let_in.setdefault(key, []).append(now[0])
    finally:
        time.time, time.monotonic = real_time, real_monotonic


def test_keys_idle_for_a_whole_period_are_dropped_and_their_window_starts_afresh(monkeypatch):
    ours, item = LocalWindow(), parse_limit("2/second")
    now = [1_800_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(LocalWindow, "SWEEP_EVERY", 4)
    assert [ours.hit(item, "idle") for _ in range(3)] == [None, None, now[0] + 1]
    now[0] += 1.5
    ours.hit(item, "busy")  # the fourth hit sweeps: "idle" let nothing in during the last second
    assert set(ours.windows) == {"busy"}
    assert ours.hit(item, "idle") is None


def test_a_step_of_the_wall_clock_back_does_not_lock_a_partner_out(monkeypatch):
    """Found by the host-clock-steps review: counted on the wall clock, the requests let in before a step
    back stayed in the window's future, and a partner at its rate got 429 for the whole step (2 hours)."""
    ours, item = LocalWindow(), parse_limit("3/minute")
    wall, monotonic = [1_800_000_000.0], [500.0]
    monkeypatch.setattr(time, "time", lambda: wall[0])
    monkeypatch.setattr(time, "monotonic", lambda: monotonic[0])
    assert [ours.hit(item, "p") for _ in range(3)] == [None, None, None]
    wall[0] -= 7200  # NTP steps the wall clock back two hours; the monotonic clock goes on
    monotonic[0] += 1
    assert ours.hit(item, "p") == wall[0] + 59  # refused, its reset told on the wall clock as it reads now
    monotonic[0] += 60
    assert ours.hit(item, "p") is None  # a minute later it is let in again, not two hours later
