"""Operator alerts.

A unit of work raises an alert with :func:`raise_alert`; the alert is written in its own
transaction once the unit has ended, committed *or* rolled back, because the most useful
alerts come from refusals (a velocity limit, an exhausted float), whose unit rolls back.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db.database import Tx
from shared.models import Alert


def raise_alert(tx: Tx, kind: str, *, partner_id: str | None = None, member_id: str | None = None,
                **detail) -> None:
    """Queue an alert; it is recorded once the unit of work ends, whatever its outcome."""
    tx.alerts.append({"kind": kind, "partner_id": partner_id, "member_id": member_id, "detail": detail})


def record_alerts(session: Session, now: datetime, day: str, alerts: list[dict]) -> None:
    for alert in alerts:
        key = "|".join([alert["kind"], alert["partner_id"] or "-", alert["member_id"] or "-", day])
        detail = json.dumps(alert["detail"], sort_keys=True, default=str)
        bumped = session.execute(update(Alert).where(Alert.dedupe_key == key).values(
            count=Alert.count + 1, last_at=now, detail=detail)).rowcount
        if not bumped:
            session.add(Alert(kind=alert["kind"], partner_id=alert["partner_id"], member_id=alert["member_id"],
                              detail=detail, dedupe_key=key, count=1, first_at=now, last_at=now))
            session.flush()


def list_alerts(tx: Tx, *, include_acknowledged: bool = False, limit: int = 200) -> list[dict]:
    query = select(Alert).order_by(Alert.last_at.desc(), Alert.id.desc()).limit(limit)
    if not include_acknowledged:
        query = query.where(Alert.acknowledged_at.is_(None))
    return [{"id": a.id, "kind": a.kind, "partner_id": a.partner_id, "member_id": a.member_id,
             "detail": json.loads(a.detail), "count": a.count, "first_at": a.first_at.isoformat(),
             "last_at": a.last_at.isoformat(),
             "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None}
            for a in tx.session.scalars(query)]


def acknowledge(tx: Tx, alert_id: int) -> bool:
    return bool(tx.session.execute(update(Alert).where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
                                   .values(acknowledged_at=tx.now)).rowcount)
