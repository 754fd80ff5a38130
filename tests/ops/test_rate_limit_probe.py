"""During a Redis outage the rate limit asks Redis again every REDIS_RETRY_SECONDS (docs/operations.md,
"Rate limits"). When that retry fell due, every request arriving until the first answer (up to the
client's timeouts: a silent Redis) started its own probe in a worker thread, the threads the requests'
database work uses: a burst held the whole pool for a timeout at each retry. Now one request probes at
a time; the others count on this process's counters at once, on the event loop, without waiting."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.to_thread
import pytest
from limits import parse

from services.partner_api.middleware import RateCounters

BURST = 24
RATE = parse("1000/minute")


@pytest.fixture
def silent_redis():
    """A Redis that accepts connections and never answers (black-holed)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    yield listener.getsockname()[1]
    listener.close()


class Watched:
    """The shared limiter, its calls into Redis counted: how many at once, how many in all."""

    def __init__(self, limiter):
        self.limiter, self.lock = limiter, threading.Lock()
        self.now = self.most = self.calls = 0

    def hit(self, *args):
        with self.lock:
            self.now, self.calls = self.now + 1, self.calls + 1
            self.most = max(self.most, self.now)
        try:
            return self.limiter.hit(*args)
        finally:
            with self.lock:
                self.now -= 1

    def get_window_stats(self, *args):
        return self.limiter.get_window_stats(*args)


def _run(fn, *args):
    """``anyio.run`` in a thread of its own. A browser test earlier on the same test worker leaves
    Playwright's event loop marked as running in the main thread for the rest of the session, and
    without ``sniffio`` installed anyio takes that for a loop already running there and refuses."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, fn, *args).result()


async def _burst(counters: RateCounters, size: int) -> list[tuple[object, float]]:
    """``size`` requests arriving at once, each answer with how long it took."""
    answers: list[tuple[object, float]] = []

    async def one(number: int):
        started = time.monotonic()
        answers.append((await counters.hit_async(RATE, f"ptn_{number % 3}"), time.monotonic() - started))

    async with anyio.create_task_group() as group:
        for number in range(size):
            group.start_soon(one, number)
    return answers


def test_one_probe_at_a_time_when_a_retry_falls_due(silent_redis):
    counters = RateCounters(f"redis://127.0.0.1:{silent_redis}/0?socket_timeout=1&socket_connect_timeout=1")
    assert counters.hit(RATE, "ptn_0") is None  # the outage starts: failed open after the timeout
    assert counters.down_until is not None and counters.shared is not None
    counters.shared = watched = Watched(counters.shared)
    counters.down_until = time.monotonic()  # the retry is due now

    started = time.monotonic()
    answers = _run(_burst, counters, BURST)
    assert len(answers) == BURST and all(reset is None for reset, _ in answers)  # all let in, failed open
    assert watched.calls == 1 and watched.most == 1, (watched.calls, watched.most)
    waited = sorted(seconds for _, seconds in answers)
    assert waited[-1] >= 0.9  # the one probe waited for the silent Redis...
    assert waited[-2] < 0.5, waited  # ...the others did not wait for it
    assert time.monotonic() - started < 3
    assert counters.down_until is not None and not counters.probing  # still down, asked again later


def test_a_probe_that_finds_redis_back_ends_the_outage_and_the_next_requests_ask_it(silent_redis):
    """The probe's answer decides: Redis answering again, every request asks it again."""

    class Back:
        def __init__(self):
            self.calls = 0

        def hit(self, *args):
            self.calls += 1
            time.sleep(0.3)  # the probe's round trip
            return True

        def get_window_stats(self, *args):
            raise AssertionError("let in: no window asked for")

    counters = RateCounters(f"redis://127.0.0.1:{silent_redis}/0?socket_timeout=1&socket_connect_timeout=1")
    counters.hit(RATE, "ptn_0")
    counters.shared = back = Back()
    counters.down_until = time.monotonic()
    answers = _run(_burst, counters, BURST)
    assert back.calls == 1 and all(reset is None for reset, _ in answers)
    assert counters.down_until is None and not counters.probing
    back.hit = lambda *args: True  # Redis answers at once now
    _run(_burst, counters, 5)
    assert counters.down_until is None


def test_the_first_requests_of_all_make_one_client(monkeypatch):
    """Making the client (a cluster's connects) is a probe too: a burst of first requests made one each,
    in turn, each holding a worker thread while it waited for the lock."""
    import services.partner_api.middleware as middleware

    made = []

    def slow_client(url, **options):
        made.append(url)
        time.sleep(0.5)
        raise ConnectionError("no cluster node answers")

    monkeypatch.setattr(middleware, "storage_from_string", slow_client)
    counters = RateCounters("redis+cluster://127.0.0.1:1")
    answers = _run(_burst, counters, BURST)
    assert len(made) == 1, len(made)
    assert all(reset is None for reset, _ in answers)
    assert sorted(seconds for _, seconds in answers)[-2] < 0.3
    assert counters.down_until is not None and counters.shared is None and not counters.probing


def test_a_probe_cancelled_while_it_waits_for_a_thread_lets_a_later_request_probe():
    """A request cancelled while its probe waited for a worker thread (the pool busy with database work)
    never ran the probe: the next request in doubt probes, instead of this process counting alone for
    good, never asking Redis (found in review of 287677b)."""
    counters = RateCounters("memory://")  # a Redis that always answers: limits' memory storage

    async def main():
        # the request is cancelled while its probe waits for a worker thread (the pool is busy)
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = 1
        release = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.to_thread.run_sync, lambda: anyio.from_thread.run(release.wait))
            await anyio.sleep(0.05)
            with anyio.move_on_after(0.1):
                await counters.hit_async(RATE, "ptn_1")
            release.set()
        limiter.total_tokens = 40
        for _ in range(20):  # later requests, Redis (here: memory) answering all along
            await counters.hit_async(RATE, "ptn_1")

    _run(main)
    assert counters.probing is False, "probing stuck True after a cancelled probe"
    assert counters.shared is not None, "the shared limiter was never made: the process never uses Redis"


class Slow:
    """A Redis answering in its own time: each call waits for its turn (a gate the test opens) or fails."""

    def __init__(self):
        self.entered, self.release = threading.Event(), threading.Event()
        self.fail = False

    def hit(self, *args):
        if self.fail:
            raise TimeoutError("Timeout reading from socket")
        self.entered.set()
        assert self.release.wait(10)
        return True

    def get_window_stats(self, *args):
        raise AssertionError("never refused here")


def test_an_answer_to_a_call_begun_before_a_failure_does_not_end_the_outage():
    """A Redis that answers around the client's timeout: one call times out (the outage starts) while an
    earlier one is still waiting and then gets its answer. That late answer says nothing of Redis now:
    the outage goes on until the retry's probe, instead of ending at once (until 2026-12-07 each late
    answer ended it, and the process switched between Redis and its own counters on every request)."""
    counters = RateCounters("redis://127.0.0.1:6379/0")
    counters.shared = slow = Slow()
    waiting = threading.Thread(target=counters.hit, args=(RATE, "ptn_0"))
    waiting.start()
    assert slow.entered.wait(10)
    slow.fail = True
    assert counters.hit(RATE, "ptn_1") is None  # failed open: the outage starts
    assert counters.down_until is not None
    slow.release.set()
    waiting.join(10)
    assert counters.down_until is not None and counters._route() == "local"
    slow.fail = False  # a request routed to Redis before the failure, its call made only now (it waited for a
    assert counters._hit_shared(RATE, "ptn_3", "redis") is None  # thread): its answer does not end the outage
    assert counters.down_until is not None and counters._route() == "local"
    counters.down_until = time.monotonic()  # the retry falls due: the probe's answer ends it
    assert counters.hit(RATE, "ptn_2") is None and counters.down_until is None
