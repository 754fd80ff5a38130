"""Points outstanding: open in unexpired lots, by who funds them (``billing``: postpaid, prepaid or
network) — the network's liability, as the ``pointsnet_outstanding_points`` gauge reports it.

Summing it reads every open lot of the network, so it is not summed at each scrape of each API
process: the worker measures it every minute (the ``outstanding_points`` job) into the
``outstanding_points`` table, and a scrape reads that (``last_measured``). Reports and the
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


def measure_outstanding(tx: Tx) -> dict[str, int]:
    """Sum the points outstanding now and keep the figures (one upsert: a second worker measuring at
    the same moment, during a change of leader, only writes the same rows again)."""
    measured = outstanding_now(tx)
    upsert = postgresql_insert if tx.is_postgres else sqlite_insert
    statement = upsert(measured_t).values(
        [{"billing": billing, "points": points, "measured_at": tx.now} for billing, points in measured.items()])
    tx.session.execute(statement.on_conflict_do_update(
        index_elements=[measured_t.c.billing],
        set_={"points": statement.excluded.points, "measured_at": statement.excluded.measured_at}))
    return measured


def last_measured(tx: Tx) -> tuple[dict[str, int], datetime] | None:
    """The figures the worker last kept and when it measured them (None: never measured yet)."""
    rows = tx.session.execute(select(measured_t.c.billing, measured_t.c.points, measured_t.c.measured_at)).all()
    if not rows:
        return None
    found = {row.billing: int(row.points) for row in rows}
    return {billing: found.get(billing, 0) for billing in BILLINGS}, min(row.measured_at for row in rows)
