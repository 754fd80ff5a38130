"""Read-only work spread over several connections that all see one snapshot (PostgreSQL).

``pointsnet verify`` runs a few dozen large read-only queries. On PostgreSQL each runs on one
core, so one after another they leave the others idle. Here the unit of work exports its
snapshot (``pg_export_snapshot``) and each helper connection imports it (``SET TRANSACTION
SNAPSHOT``) in a REPEATABLE READ, READ ONLY transaction: the queries run side by side and every
one of them sees exactly the database the unit sees, as if they had run in it one by one.
Elsewhere (SQLite, a PostgreSQL standby, which cannot export a snapshot), or with one worker,
they do run in the unit, one by one.

Settlement writes a statement per partner the same way (:func:`stream_in_snapshot`): a few
connections, each holding the snapshot for its whole life, take the partners in turn, and the
unit receives the statements in order, never more than a few ahead.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Callable, Iterator, Sequence, TypeVar

from sqlalchemy import Connection, text

from shared.config import default_jobs
from shared.db.database import Tx

T = TypeVar("T")
log = logging.getLogger(__name__)
# ``pointsnet verify``'s default: this machine's cores (the database's are what count; --jobs says)
DEFAULT_WORKERS = default_jobs()
Job = Callable[[Connection], T]
LOCK_TIMEOUT = "30s"  # a helper's longest wait for a lock (reading, it waits only behind DDL)


def _serial(tx: Tx, workers: int, jobs: int) -> bool:
    return (not tx.is_postgres or workers <= 1 or jobs <= 1  # a standby cannot export a snapshot
            or tx.session.execute(text("SELECT pg_is_in_recovery()")).scalar_one())


def _export(tx: Tx) -> str:
    snapshot = tx.session.execute(text("SELECT pg_export_snapshot()")).scalar_one()
    if not re.fullmatch(r"[0-9A-Fa-f-]+", snapshot):  # it goes into SQL text: SET takes no parameters
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    return snapshot


def _begin_in(connection: Connection, snapshot: str, settings: Sequence[str]) -> None:
    connection.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
    connection.execute(text("SET TRANSACTION READ ONLY"))
    # The unit waits for its helpers in Python, where PostgreSQL cannot see it: were a helper to queue
    # for a lock behind one that waits for the unit (ALTER TABLE of a table the unit read), neither would
    # ever go on. A helper gives up instead, and the unit fails with its error.
    connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    for setting in settings:
        connection.execute(text(f"SET LOCAL {setting}"))


def run_in_snapshot(tx: Tx, jobs: Sequence[Job], workers: int, *, settings: Sequence[str] = ()) -> list:
    """Each job's result, in the order given. Give the longest jobs first: the workers take the
    next job as they finish one. ``settings`` (``"jit = off"``, …) apply to every job's transaction."""
    with stream_in_snapshot(tx, jobs, workers, settings=settings, ahead=len(jobs)) as results:
        return list(results)


class Stream(Iterator):
    """The results of :func:`stream_in_snapshot`, in order. ``close()`` (or leaving a ``with`` block)
    stops it: the jobs still running finish, no new one starts, and ``discard`` receives every
    result that was made but not taken."""

    def __init__(self, results: Iterator, stop: Callable[[], None] = lambda: None):
        self._results, self._stop = results, stop

    def __next__(self):
        return next(self._results)

    def close(self) -> None:
        try:
            self._results.close()
        finally:
            self._stop()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stream_in_snapshot(tx: Tx, jobs: Sequence[Job], workers: int, *, settings: Sequence[str] = (),
                       ahead: int = 2, discard: Callable[[T], None] | None = None) -> Stream:
    """Each job's result, in the order given, as it is ready. The work starts at once: ``workers``
    connections in the unit's snapshot take the jobs in order while the caller goes on, and no more
    than ``workers + ahead`` results are being made, waiting, or held by the caller (until it asks
    for the next) at any time: a result may hold an open file. A job's error is raised where its
    result would have come. A helper that cannot connect (or import the snapshot) leaves the jobs to
    the others; only when none is left does its error come. Elsewhere (SQLite, a standby, one worker)
    the jobs run in the unit, one as each result is asked for."""
    if _serial(tx, workers, len(jobs)):
        connection = tx.session.connection()
        for setting in settings:
            connection.execute(text(f"SET LOCAL {setting}"))
        return Stream(job(connection) for job in jobs)
    snapshot = _export(tx)
    engine = tx.session.get_bind().engine
    done: dict[int, tuple[bool, object]] = {}
    state = {"next": 0, "stop": False, "failure": None, "alive": min(workers, len(jobs))}
    changed = threading.Condition()
    slots = threading.Semaphore(workers + ahead)

    def take() -> int | None:
        slots.acquire()
        with changed:
            if state["stop"] or state["next"] >= len(jobs):
                slots.release()
                return None
            index = state["next"]
            state["next"] += 1
            return index

    def work() -> None:
        try:
            with engine.connect() as connection:
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
                with connection.begin():
                    _begin_in(connection, snapshot, settings)
                    while (index := take()) is not None:
                        try:
                            outcome = (True, jobs[index](connection))
                        except BaseException as error:  # noqa: BLE001 - handed to the caller
                            outcome = (False, error)
                        with changed:
                            done[index] = outcome
                            changed.notify_all()
                        if not outcome[0]:
                            return  # this connection's transaction is aborted; the others go on
        except BaseException as error:  # noqa: BLE001 - e.g. no connection: the other helpers go on
            with changed:
                state["failure"] = state["failure"] or error
        finally:
            with changed:
                state["alive"] -= 1
                changed.notify_all()

    threads = [threading.Thread(target=work, name=f"snapshot-{n}", daemon=True)
               for n in range(min(workers, len(jobs)))]
    for thread in threads:
        thread.start()

    def results() -> Iterator:
        for index in range(len(jobs)):
            with changed:
                while index not in done and state["alive"]:
                    changed.wait()
                if index not in done:  # every helper is gone (none could connect, or each one's job failed)
                    raise state["failure"] or RuntimeError(f"no helper connection is left for job {index}")
                ok, value = done.pop(index)
            if not ok:
                raise value
            yield value
            slots.release()  # the caller is done with it (it asked for the next)

    def stop() -> None:
        with changed:
            if state["stop"]:
                return
            state["stop"] = True
        for _ in threads:
            slots.release()  # a worker waiting for a slot sees the stop
        for thread in threads:
            thread.join()
        for ok, value in done.values():
            if ok and discard is not None:
                try:
                    discard(value)
                except Exception:  # noqa: BLE001 - the others are still discarded; the caller's error stands
                    log.exception("discarding a result that was not taken failed")
        done.clear()

    def stopping() -> Iterator:
        try:
            yield from results()
        finally:
            stop()

    return Stream(stopping(), stop)
