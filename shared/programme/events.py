"""The programme's member-facing events, one function each: today they record their rows.

These are the places to hang webhooks on (``tier.changed``, ``member.status_changed``,
``points.expiring``): each is called inside the unit of work that decides the change,
with every row it writes, so an outbox row added here commits (or not) with them.
"""

from __future__ import annotations

from sqlalchemy import insert

from shared.db.database import Tx
from shared.models import ExpiryReminder, MemberStatusHistory, MemberTierHistory


def tier_changed(tx: Tx, rows: list[dict]) -> None:
    """``tier.changed``: rows of ``member_tier_history`` (member_id, from_tier, to_tier, reason, …)."""
    if rows:
        tx.session.execute(insert(MemberTierHistory.__table__), rows)


def member_status_changed(tx: Tx, rows: list[dict]) -> None:
    """``member.status_changed``: rows of ``member_status_history``."""
    if rows:
        tx.session.execute(insert(MemberStatusHistory.__table__), rows)


def points_expiring(tx: Tx, rows: list[dict]) -> None:
    """``points.expiring``: rows of ``expiry_reminders`` (member_id, expires_on, days_before, points)."""
    if rows:
        tx.session.execute(insert(ExpiryReminder.__table__), rows)
