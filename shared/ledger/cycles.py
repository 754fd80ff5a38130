"""Business-day settlement cycles: which cycle an instant falls in, and the closed-cycle guard."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.config import Settings
from shared.db.database import Tx
from shared.errors import CycleClosed
from shared.models import Cycle

cycles = Cycle.__table__


def cycle_date_for(instant: datetime, settings: Settings) -> date:
    """The business day (network time zone, after the cut-off) an instant belongs to."""
    local = instant.astimezone(settings.zone) - timedelta(minutes=settings.cycle_cutoff_minutes)
    return local.date()


def _ensure_cycle(tx: Tx, cycle_date: date) -> None:
    insert = pg_insert if tx.is_postgres else sqlite_insert
    tx.session.execute(insert(cycles).values(cycle_date=cycle_date, status="open").on_conflict_do_nothing())


_CYCLE_STATUS = select(cycles.c.status).where(cycles.c.cycle_date == bindparam("cycle_date"))
_CYCLE_STATUS_KEY_SHARE = _CYCLE_STATUS.with_for_update(read=True, key_share=True)


def enter_open_cycle(tx: Tx) -> date:
    """Make sure the cycle of ``tx.now`` exists and is open, and keep it open until commit.

    On PostgreSQL the writer holds the cycle row FOR KEY SHARE (the lightest share lock,
    which still conflicts with FOR UPDATE), so closing
    waits for every writer in flight and no entry can commit into a closed cycle.
    On SQLite the single writer lock gives the same guarantee.
    """
    cycle_date = cycle_date_for(tx.now, tx.settings)
    query, key = (_CYCLE_STATUS_KEY_SHARE if tx.is_postgres else _CYCLE_STATUS), {"cycle_date": cycle_date}
    status = tx.session.execute(query, key).scalar_one_or_none()
    if status is None:  # the day's first writer makes the cycle (a twin may race it: no conflict either way)
        _ensure_cycle(tx, cycle_date)
        status = tx.session.execute(query, key).scalar_one()
    if status != "open":
        raise CycleClosed(f"cycle {cycle_date.isoformat()} is closed; no entry can be posted into it")
    return cycle_date


def close_cycle(tx: Tx, cycle_date: date) -> bool:
    """Close a cycle (idempotent). Returns True if this call closed it."""
    _ensure_cycle(tx, cycle_date)
    query = select(cycles.c.status).where(cycles.c.cycle_date == cycle_date)
    if tx.is_postgres:
        query = query.with_for_update()
    if tx.session.execute(query).scalar_one() == "closed":
        return False
    tx.session.execute(
        update(cycles).where(cycles.c.cycle_date == cycle_date).values(status="closed", closed_at=tx.now)
    )
    return True
