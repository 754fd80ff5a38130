"""SQLite's writers in one process take turns in order of arrival: a request waiting to write is not
overtaken by a job writing transaction after transaction (a restart's settlement catch-up). No turn is
ever lost: not to an error in a unit, a writer that gives up waiting, or one interrupted while waiting.
Every wait here is bounded, so a regression fails instead of hanging the run."""

import sqlite3
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from shared.db import writer_queue
from shared.db.database import Database
from shared.db.writer_queue import TurnTimeout, WriterQueue
from tests.conftest import START
from tests.interleave import Pause, overlap


def _waiting(queue: WriterQueue, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(queue._waiting) < count:
        assert time.monotonic() < deadline, "the writer never queued"
        time.sleep(0.001)


def _in_thread(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _finishes(target) -> None:
    done = []
    _in_thread(lambda: (target(), done.append(True))).join(30)
    assert done, "it waited for a turn that never came"


def _one_turn(queue, order, name):
    with queue.turn():
        order.append(name)


def test_turns_pass_in_order_of_arrival():
    queue, order, threads = WriterQueue(), [], []
    with queue.turn():
        for name in range(6):
            threads.append(_in_thread(_one_turn, queue, order, name))
            _waiting(queue, name + 1)  # each has queued before the next arrives
    for thread in threads:
        thread.join(30)
    assert order == list(range(6))
    assert queue.free


def test_a_turn_inside_a_turn_on_one_thread_goes_on_within_it():
    queue, order = WriterQueue(), []

    def outer():
        with queue.turn():
            with queue.turn():  # no wait for itself
                order.append("inner")
            waiter = _in_thread(_one_turn, queue, order, "other")
            _waiting(queue, 1)
            order.append("outer, after the inner one")  # the inner one's end did not pass the turn on
        waiter.join(30)

    _finishes(outer)
    assert order == ["inner", "outer, after the inner one", "other"]
    assert queue.free


def test_a_writer_that_gives_up_waiting_leaves_the_queue():
    queue, outcome, order = WriterQueue(patience_s=0.05), [], []
    with queue.turn():
        _in_thread(lambda: outcome.append(_try(queue))).join(30)
    assert isinstance(outcome[0], TurnTimeout)
    assert queue.free and not queue._waiting  # the turn was not handed to the writer that left
    _finishes(lambda: _one_turn(queue, order, "next"))
    assert order == ["next"]


def test_a_writer_interrupted_while_waiting_loses_no_turn(monkeypatch):
    queue, outcome, order = WriterQueue(), [], []

    class Interrupted:  # a baton whose wait is interrupted, as by Ctrl-C
        def __init__(self):
            self.lock = threading.Lock()

        def acquire(self, timeout=None):
            if timeout is not None:
                raise KeyboardInterrupt
            return self.lock.acquire()

        def release(self):
            self.lock.release()

    class Batons:
        Lock = Interrupted

    with queue.turn():
        monkeypatch.setattr(writer_queue, "threading", Batons)  # batons only: the queue's own lock is made
        _in_thread(lambda: outcome.append(_try(queue, KeyboardInterrupt))).join(30)
        monkeypatch.undo()
        assert isinstance(outcome[0], KeyboardInterrupt) and not queue._waiting
    assert queue.free
    _finishes(lambda: _one_turn(queue, order, "next"))
    assert order == ["next"]


def _try(queue, expected=TurnTimeout):
    try:
        with queue.turn():
            return None
    except expected as stopped:
        return stopped


def _sqlite(settings, tmp_path, **kwargs) -> Database:
    db = Database(settings, url=f"sqlite:///{tmp_path / 'turns.db'}", pool_size=4, **kwargs)
    db.run_in_transaction(lambda tx: tx.session.execute(text("CREATE TABLE t (who TEXT)")))
    return db


def test_a_waiting_writer_is_not_overtaken_by_a_job_writing_back_to_back(settings, tmp_path):
    db = _sqlite(settings, tmp_path)
    stop, request_waiting, overtook = threading.Event(), threading.Event(), []

    def job():  # transaction after transaction, 50 ms each, with no pause between them
        while not stop.is_set():
            def unit(tx):
                tx.session.execute(text("INSERT INTO t VALUES ('job')"))  # holds the write lock from here
                overtaking = request_waiting.is_set()  # took it while the request waited for its turn
                time.sleep(0.05)
                if overtaking:
                    overtook[-1] += 1
            db.run_in_transaction(unit)

    worker = _in_thread(job)
    try:
        for _request in range(5):
            time.sleep(0.06)
            overtook.append(0)
            request_waiting.set()
            db.run_in_transaction(lambda tx: (tx.session.execute(text("INSERT INTO t VALUES ('request')")),
                                              request_waiting.clear()))  # cleared once it holds the lock
    finally:
        stop.set()
        worker.join(30)
        db.dispose()
    # At most the one the job had begun when the request arrived, in the instant before it queued.
    # (Without the queue, SQLite's busy handler let the job overtake hundreds of times.)
    assert max(overtook) <= 1, overtook


def test_a_failed_unit_and_a_writer_out_of_patience_lose_no_turn(settings, tmp_path):
    db = _sqlite(settings, tmp_path)
    try:
        with pytest.raises(ZeroDivisionError):
            db.run_in_transaction(lambda tx: (tx.session.execute(text("INSERT INTO t VALUES ('failed')")), 1 / 0))
        db._write_turns.patience_s = 0.05  # the second writer gives up its wait, and the runner retries it
        holding = threading.Event()

        def long_unit(tx):
            tx.session.execute(text("INSERT INTO t VALUES ('long')"))
            holding.set()
            time.sleep(0.3)

        holder = _in_thread(db.run_in_transaction, long_unit)
        assert holding.wait(30)
        _finishes(lambda: db.run_in_transaction(lambda tx: tx.session.execute(text("INSERT INTO t VALUES ('patient')"))))
        holder.join(30)
        rows = db.run_in_transaction(lambda tx: tx.session.execute(text("SELECT who FROM t ORDER BY rowid")).scalars().all(),
                                     readonly=True)
        assert rows == ["long", "patient"]
        assert db._write_turns.free
    finally:
        db.dispose()


def test_readiness_answers_while_another_process_holds_the_write_lock(settings, tmp_path):
    db = _sqlite(settings, tmp_path)
    other = sqlite3.connect(tmp_path / "turns.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        _finishes(db.ping)  # a ping that wanted the write lock would wait the busy timeout (60 s)
    finally:
        other.rollback()
        other.close()
        db.dispose()


class _Ticking:
    """A clock a millisecond later at every reading; the first unit waits at its pause right after its
    reading (tests/interleave.py)."""

    def __init__(self, pause: Pause) -> None:
        self.pause, self._lock, self._now = pause, threading.Lock(), START

    def now(self):
        with self._lock:
            self._now += timedelta(milliseconds=1)
            now = self._now
        self.pause()
        return now


def test_a_unit_reads_its_time_once_it_has_its_turn(settings, tmp_path):
    """A write unit's ``tx.now`` is read once it has its turn at the write lock, so the units commit in
    the order of their times. Read before the wait, a unit that read its time and then waited for its
    turn committed a time older than that of a unit that took the turn before it: time went backwards
    in the ledger's order."""
    pause = Pause()
    db = _sqlite(settings, tmp_path, clock=_Ticking(pause))
    db.run_in_transaction(lambda tx: tx.session.execute(text("ALTER TABLE t ADD COLUMN at TEXT")))

    def write(who):
        return db.run_in_transaction(lambda tx: tx.session.execute(
            text("INSERT INTO t VALUES (:who, :at)"), {"who": who, "at": tx.now.isoformat()}))

    try:
        both = overlap(lambda: write("first"), lambda: write("second"), pause)
        assert not isinstance(both.first, Exception) and not isinstance(both.second, Exception), both
        rows = db.run_in_transaction(lambda tx: tx.session.execute(text("SELECT who, at FROM t ORDER BY rowid")).all(),
                                     readonly=True)
    finally:
        db.dispose()
    assert len(rows) == 2
    assert [at for _who, at in rows] == sorted(at for _who, at in rows), rows  # in commit order, time goes on
