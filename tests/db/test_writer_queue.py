"""SQLite's writers in one process take turns in order of arrival: a request waiting to write is not
overtaken by a job writing transaction after transaction (a restart's settlement catch-up)."""

import threading
import time

from sqlalchemy import text

from shared.db.database import Database
from shared.db.writer_queue import WriterQueue


def _waiting(queue: WriterQueue, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(queue._waiting) < count:
        assert time.monotonic() < deadline, "the writer never queued"
        time.sleep(0.001)


def test_turns_pass_in_order_of_arrival():
    queue, order = WriterQueue(), []
    threads = []
    with queue.turn():
        for name in range(6):
            threads.append(threading.Thread(target=_one_turn, args=(queue, order, name)))
            threads[-1].start()
            _waiting(queue, name + 1)  # each has queued before the next arrives
    for thread in threads:
        thread.join(30)
    assert order == list(range(6))
    with queue.turn():  # free again once the last has gone
        assert not queue._waiting


def test_a_turn_inside_a_turn_on_one_thread_goes_on_within_it():
    queue, order = WriterQueue(), []
    with queue.turn():
        with queue.turn():  # no wait for itself
            order.append("inner")
        waiter = threading.Thread(target=lambda: _one_turn(queue, order, "other"))
        waiter.start()
        _waiting(queue, 1)
        order.append("outer, after the inner one")  # the inner one's end did not pass the turn on
    waiter.join(30)
    assert order == ["inner", "outer, after the inner one", "other"]


def _one_turn(queue, order, name):
    with queue.turn():
        order.append(name)


def _sqlite(settings, tmp_path) -> Database:
    db = Database(settings, url=f"sqlite:///{tmp_path / 'turns.db'}", pool_size=4)
    db.run_in_transaction(lambda tx: tx.session.execute(text("CREATE TABLE t (who TEXT)")))
    return db


def test_a_waiting_writer_is_not_overtaken_by_a_job_writing_back_to_back(settings, tmp_path):
    db = _sqlite(settings, tmp_path)
    stop, request_waiting, overtook = threading.Event(), threading.Event(), []

    def job():  # transaction after transaction, 20 ms each, with no pause between them
        while not stop.is_set():
            def unit(tx):
                tx.session.execute(text("INSERT INTO t VALUES ('job')"))  # holds the write lock from here
                overtaking = request_waiting.is_set()  # took it while the request waited for its turn
                time.sleep(0.02)
                if overtaking:
                    overtook[-1] += 1
            db.run_in_transaction(unit)

    worker = threading.Thread(target=job)
    worker.start()
    try:
        for _request in range(5):
            time.sleep(0.03)
            overtook.append(0)
            request_waiting.set()
            db.run_in_transaction(lambda tx: (tx.session.execute(text("INSERT INTO t VALUES ('request')")),
                                              request_waiting.clear()))  # cleared once it holds the lock
    finally:
        stop.set()
        worker.join(30)
        db.dispose()
    # At most the one the job had begun when the request arrived (in the instant before it queued).
    assert max(overtook) <= 1, overtook


def test_readiness_answers_while_another_process_holds_the_write_lock(settings, tmp_path):
    import sqlite3

    db = _sqlite(settings, tmp_path)
    other = sqlite3.connect(tmp_path / "turns.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    answered = threading.Event()
    probe = threading.Thread(target=lambda: (db.ping(), answered.set()), daemon=True)
    try:
        probe.start()
        probe.join(30)  # a ping that wanted the write lock would wait the busy timeout (60 s)
        assert answered.is_set()
    finally:
        other.rollback()
        other.close()
        probe.join(90)
        db.dispose()
