"""Read-only work spread over several connections that all see one snapshot (PostgreSQL).

``pointsnet verify`` runs a few dozen large read-only queries. On PostgreSQL each runs on one
core, so one after another they leave the others idle. Here the unit of work exports its
snapshot (``pg_export_snapshot``) and each helper connection imports it (``SET TRANSACTION
SNAPSHOT``) in a REPEATABLE READ, READ ONLY transaction: the queries run side by side and every
one of them sees exactly the database the unit sees, as if they had run in it one by one.
Elsewhere (SQLite, a PostgreSQL standby, which cannot export a snapshot), or with one worker,
they do run in the unit, one by one.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

from sqlalchemy import Connection, text

from shared.db.database import Tx

T = TypeVar("T")
# ``pointsnet verify``'s default: this machine's cores (the database's are what count; --jobs says)
DEFAULT_WORKERS = min(os.cpu_count() or 1, 8)
Job = Callable[[Connection], T]


def run_in_snapshot(tx: Tx, jobs: Sequence[Job], workers: int, *, settings: Sequence[str] = ()) -> list:
    """Each job's result, in the order given. Give the longest jobs first: the workers take the
    next job as they finish one. ``settings`` (``"jit = off"``, …) apply to every job's transaction."""
    if (not tx.is_postgres or workers <= 1 or len(jobs) <= 1  # a standby cannot export a snapshot
            or tx.session.execute(text("SELECT pg_is_in_recovery()")).scalar_one()):
        connection = tx.session.connection()
        for setting in settings:
            connection.execute(text(f"SET LOCAL {setting}"))
        return [job(connection) for job in jobs]
    snapshot = tx.session.execute(text("SELECT pg_export_snapshot()")).scalar_one()
    if not re.fullmatch(r"[0-9A-Fa-f-]+", snapshot):  # it goes into SQL text: SET takes no parameters
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    engine = tx.session.get_bind().engine

    def run(job: Job):
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                connection.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
                connection.execute(text("SET TRANSACTION READ ONLY"))
                for setting in settings:
                    connection.execute(text(f"SET LOCAL {setting}"))
                return job(connection)

    with ThreadPoolExecutor(max_workers=min(workers, len(jobs)), thread_name_prefix="snapshot") as pool:
        return list(pool.map(run, jobs))
