"""Business days for payment dates: weekends and the holidays kept in the database are not."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from shared.db.database import Tx
from shared.models import Holiday


def add_business_days(start: date, days: int, holidays: set[date]) -> date:
    """The date ``days`` business days after ``start`` (0: ``start`` itself if it is one, else the next)."""
    current = start
    if days == 0:
        while current.weekday() >= 5 or current in holidays:
            current += timedelta(days=1)
        return current
    while days:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in holidays:
            days -= 1
    return current


def holidays_between(tx: Tx, start: date, end: date) -> set[date]:
    return set(tx.session.execute(select(Holiday.day).where(Holiday.day >= start, Holiday.day <= end)).scalars())


def payment_date(tx: Tx, cycle_date: date) -> date:
    lag = tx.settings.settlement_lag_business_days
    return add_business_days(cycle_date, lag, holidays_between(tx, cycle_date, cycle_date + timedelta(days=60 + lag * 3)))
