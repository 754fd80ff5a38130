"""Points outstanding: open in unexpired lots, by who funds them (``billing``: postpaid, prepaid or
network) — the network's liability, as the ``pointsnet_outstanding_points`` gauge reports it.
(``shared.observability`` sets the gauges; ``services/clearing/jobs.py`` runs the measure.)

Summing it reads every open lot of the network, so it is not summed at each scrape of each API
process: the worker measures it every minute (the ``outstanding_points`` job) into the
``outstanding_points`` table, and a scrape reads that (``last_measured``). The sum runs in a
read-only unit: on SQLite a writer would hold the one write lock for all of it. Reports and the
dashboard's overview sum it themselves, exactly, for the moment they show.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.db.database import Tx
from shared.models import Lot, OutstandingPoints

BILLINGS = ("postpaid", "prepaid", "network")
measured_t = OutstandingPoints.__table__


def outstanding_now(tx: Tx) -> dict[str, int]:
    """Billing -> points open in unexpired lots now (every billing, 0 when none)."""
    found = dict(tx.session.execute(select(Lot.billing, func.sum(Lot.remaining)).where(
        Lot.remaining > 0, Lot.expires_at > tx.now).group_by(Lot.billing)).all())
    return {billing: int(found.get(billing) or 0) for billing in BILLINGS}


def measure_outstanding(network) -> tuple[dict[str, int], datetime]:
    """The ``outstanding_points`` job: sum the points outstanding in a read-only unit (on SQLite a
    writer would hold the one write lock for the whole sum), then keep the figures in a short one."""
    measured, at = network.tx(lambda tx: (outstanding_now(tx), tx.now), readonly=True)
    network.tx(lambda tx: keep_measure(tx, measured, at))
    return measured, at


def keep_measure(tx: Tx, measured: dict[str, int], at: datetime) -> None:
    """Keep figures measured ``at``: one upsert, which never replaces a later measure (two workers may
    both measure during a change of leader)."""
    upsert = postgresql_insert if tx.is_postgres else sqlite_insert
    statement = upsert(measured_t).values(
        [{"billing": billing, "points": points, "measured_at": at} for billing, points in measured.items()])
    tx.session.execute(statement.on_conflict_do_update(
        index_elements=[measured_t.c.billing],
        set_={"points": statement.excluded.points, "measured_at": statement.excluded.measured_at},
        where=statement.excluded.measured_at >= measured_t.c.measured_at))


def last_measured(tx: Tx) -> tuple[dict[str, int], datetime] | None:
    """The figures the worker last kept and when it measured them (None: never measured yet)."""
    rows = tx.session.execute(select(measured_t.c.billing, measured_t.c.points, measured_t.c.measured_at)).all()
    if not rows:
        return None
    found = {row.billing: int(row.points) for row in rows}
    return {billing: found.get(billing, 0) for billing in BILLINGS}, min(row.measured_at for row in rows)
