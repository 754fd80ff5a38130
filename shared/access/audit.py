"""The audit log: every change a dashboard user makes, written in the same transaction as the
change itself, and every view of unmasked personal data."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from sqlalchemy import func, select

from shared.db.database import Tx
from shared.models import AuditEntry


class Actor(NamedTuple):
    """Who did it (a dashboard session has the same two fields)."""

    user_id: str | None
    email: str


def record(tx: Tx, actor: Any, action: str, target: str | None = None, /, **detail: Any) -> None:
    """``actor`` has ``user_id`` and ``email`` (a dashboard session) or is None (the CLI). The first four
    are positional only, so a detail may be called ``action`` or ``target`` (an approval names its action)."""
    tx.session.add(AuditEntry(at=tx.now, user_id=getattr(actor, "user_id", None),
                              user_email=getattr(actor, "email", "cli"), action=action, target=target,
                              detail=json.dumps(detail, sort_keys=True, default=str)))


def page(tx: Tx, *, offset: int = 0, limit: int = 50, action: str | None = None,
         target: str | None = None) -> tuple[list[dict], int]:
    query = select(AuditEntry)
    counted = select(func.count()).select_from(AuditEntry)
    if action:
        query, counted = query.where(AuditEntry.action == action), counted.where(AuditEntry.action == action)
    if target:
        query, counted = query.where(AuditEntry.target == target), counted.where(AuditEntry.target == target)
    rows = tx.session.scalars(query.order_by(AuditEntry.id.desc()).offset(offset).limit(limit))
    return ([{"id": r.id, "at": r.at, "user": r.user_email, "action": r.action, "target": r.target,
              "detail": json.loads(r.detail)} for r in rows], tx.session.scalar(counted) or 0)
