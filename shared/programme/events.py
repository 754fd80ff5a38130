"""The programme's member-facing events, one function each: each records its rows and queues its
webhook (``tier.changed``, ``member.status_changed``, ``points.expiring``) in the same unit of
work, so the outbox row commits, or not, with the change it announces. Every linked partner of
the member receives it; payloads carry member ids only.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import insert

from shared.db.bulk import insert_rows
from shared.db.database import Tx
from shared.models import ExpiryReminder, MemberStatusHistory, MemberTierHistory
from shared.webhooks.outbox import Outgoing, emit_many, instant


def _iso(value) -> str | None:
    """A date as ``YYYY-MM-DD``; an instant in UTC with ``Z``, as every webhook writes one
    (docs/partner-integration.md: "``Z`` in reads and webhooks")."""
    if isinstance(value, datetime):
        return instant(value.astimezone(timezone.utc))
    return value.isoformat() if value is not None else None


def tier_changed(tx: Tx, rows: list[dict]) -> None:
    """``tier.changed``: rows of ``member_tier_history`` (member_id, from_tier, to_tier, reason, …)."""
    if rows:
        tx.session.execute(insert(MemberTierHistory.__table__), rows)
        emit_many(tx, [Outgoing("tier.changed", {
            "member_id": row["member_id"], "from_tier": row["from_tier"], "to_tier": row["to_tier"],
            "reason": row["reason"], "qualifying_points": row["qualifying_points"], "at": _iso(row["at"])})
            for row in rows])


def member_status_changed(tx: Tx, rows: list[dict]) -> None:
    """``member.status_changed``: rows of ``member_status_history``."""
    if rows:
        insert_rows(tx, MemberStatusHistory.__table__, rows)  # set-based: a pass makes thousands
        emit_many(tx, [Outgoing("member.status_changed", {
            "member_id": row["member_id"], "from_status": row["from_status"], "to_status": row["to_status"],
            "last_activity_at": _iso(row["last_activity_at"]), "at": _iso(row["at"])}) for row in rows])


def points_expiring(tx: Tx, rows: list[dict]) -> None:
    """``points.expiring``: rows of ``expiry_reminders`` (member_id, expires_on, days_before, points)."""
    if rows:
        insert_rows(tx, ExpiryReminder.__table__, rows)  # set-based: a pass makes thousands
        emit_many(tx, [Outgoing("points.expiring", {
            "member_id": row["member_id"], "expires_on": _iso(row["expires_on"]), "days_before": row["days_before"],
            "points": row["points"], "first_expires_at": _iso(row["first_expires_at"])}) for row in rows])
