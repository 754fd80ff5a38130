"""Operator alerts.

A unit of work raises an alert with :func:`raise_alert`; the alert is written in its own
transaction once the unit has ended, committed *or* rolled back, because the most useful
alerts come from refusals (a velocity limit, an exhausted float), whose unit rolls back.

Occurrences of one kind about one subject (partner, member) on one network day add to one open
row (its ``dedupe_key``), with a count. An acknowledged row stays as the operator saw it: the next
occurrence opens a new row with the same key, which is unique among open rows only (a partial
unique index). Each occurrence is one INSERT … ON CONFLICT on that index, so two processes
recording the same alert at once make one open row: the second waits for the first's row and
adds to it.

A *standing condition* (a partner over its exposure limit) is not an event but a state that a
periodic check finds again and again. Its alert (:func:`raise_condition`) is held by an
acknowledgement: while the condition lasts — the next hours and network days too — the check
records nothing more (it renews the acknowledged alert's ``last_at``), and the operator is not asked
to acknowledge the same state every hour. An acknowledgement no check has renewed for
``STANDING_LAPSE`` (the checks stopped, or it predates this rule) holds nothing back.
When the check finds the condition gone (:func:`clear_conditions`), the acknowledged alert is
released (its ``dedupe_key`` gets ``#`` and its id, as a row the operator has dealt with for
good), so the condition's return opens a new alert. A worse state is a condition of its own
(``exposure_limit_exceeded`` after ``exposure_limit_near``) and shows although the milder one
was acknowledged.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, String, Text, cast, func, literal, literal_column, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shared.db.database import Tx
from shared.db.lists import among
from shared.models import Alert

alerts_t = Alert.__table__
# an acknowledged standing condition no check has seen for this long holds its next occurrence back no
# more: the exposure check runs hourly, so two missed runs
STANDING_LAPSE = timedelta(hours=2)


def raise_alert(tx: Tx, kind: str, *, partner_id: str | None = None, member_id: str | None = None,
                **detail) -> None:
    """Queue an alert; it is recorded once the unit of work ends, whatever its outcome."""
    tx.alerts.append({"kind": kind, "partner_id": partner_id, "member_id": member_id, "detail": detail})


def raise_condition(tx: Tx, kind: str, *, partner_id: str | None = None, member_id: str | None = None,
                    **detail) -> None:
    """Queue the alert of a standing condition found by a periodic check: recorded as an alert,
    unless the operator has acknowledged this condition since it last cleared."""
    tx.alerts.append({"kind": kind, "partner_id": partner_id, "member_id": member_id, "detail": detail,
                      "standing": True})


def clear_conditions(tx: Tx, kind: str, partner_ids: list[str]) -> None:
    """The check found no condition ``kind`` at these partners: an acknowledgement of it no longer
    holds back its next occurrence."""
    if partner_ids:
        tx.alerts.append({"kind": kind, "clear": sorted(partner_ids)})


def renew_conditions(tx: Tx, kind: str, partner_ids: list[str]) -> None:
    """The check found condition ``kind`` still standing at these partners without raising it (a
    milder condition within a worse one: near the limit while over it): an acknowledgement of it is
    renewed, as when it is found."""
    if partner_ids:
        tx.alerts.append({"kind": kind, "renew": sorted(partner_ids)})


def _held(session: Session, alert: dict, now: datetime) -> int | None:
    """The id of an acknowledged alert of the same condition that has not cleared since: seen by a
    check within STANDING_LAPSE. An acknowledgement no check has renewed for longer (the checks
    stopped, or it was made before this release, which recorded no clearing) holds nothing back: the
    condition may have cleared and returned unseen meanwhile, and is shown again."""
    return session.execute(select(alerts_t.c.id).where(
        alerts_t.c.kind == alert["kind"], alerts_t.c.acknowledged_at.is_not(None),
        alerts_t.c.partner_id.is_(None) if alert["partner_id"] is None else alerts_t.c.partner_id == alert["partner_id"],
        alerts_t.c.member_id.is_(None) if alert["member_id"] is None else alerts_t.c.member_id == alert["member_id"],
        ~alerts_t.c.dedupe_key.contains("#"), alerts_t.c.last_at >= now - STANDING_LAPSE)
        .order_by(alerts_t.c.id.desc()).limit(1)).scalar()


def _renew(session: Session, kind: str, partner_ids: list[str], now: datetime) -> None:
    dialect = session.get_bind().dialect.name
    session.execute(update(alerts_t).where(
        alerts_t.c.kind == kind, among(dialect, alerts_t.c.partner_id, partner_ids), alerts_t.c.member_id.is_(None),
        alerts_t.c.acknowledged_at.is_not(None), ~alerts_t.c.dedupe_key.contains("#"),
        alerts_t.c.last_at >= now - STANDING_LAPSE).values(last_at=now))


def _release(session: Session, kind: str, partner_ids: list[str]) -> None:
    dialect = session.get_bind().dialect.name
    session.execute(update(alerts_t).where(
        alerts_t.c.kind == kind, among(dialect, alerts_t.c.partner_id, partner_ids),
        alerts_t.c.member_id.is_(None), alerts_t.c.acknowledged_at.is_not(None), ~alerts_t.c.dedupe_key.contains("#"))
        .values(dedupe_key=alerts_t.c.dedupe_key + literal("#") + alerts_t.c.id.cast(String)))


def record_alerts(session: Session, now: datetime, day: str, alerts: list[dict]) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for alert in alerts:
        if "clear" in alert:
            _release(session, alert["kind"], alert["clear"])
            continue
        if "renew" in alert:
            _renew(session, alert["kind"], alert["renew"], now)
            continue
        held = _held(session, alert, now) if alert.get("standing") else None
        if held is not None:  # still standing: the acknowledgement holds, renewed (last seen now)
            session.execute(update(alerts_t).where(alerts_t.c.id == held).values(last_at=now))
            continue
        key = "|".join([alert["kind"], alert["partner_id"] or "-", alert["member_id"] or "-", day])
        detail = json.dumps(alert["detail"], sort_keys=True, default=str)
        statement = insert(alerts_t).values(
            kind=alert["kind"], partner_id=alert["partner_id"], member_id=alert["member_id"], detail=detail,
            dedupe_key=key, count=1, first_at=now, last_at=now)
        # the open row's key only (uq_alerts_open_dedupe_key): an acknowledged row never matches
        merged = (_adding_refusals(session, statement.excluded.detail) if "refused_events" in alert["detail"]
                  else statement.excluded.detail)
        session.execute(statement.on_conflict_do_update(
            index_elements=[alerts_t.c.dedupe_key], index_where=alerts_t.c.acknowledged_at.is_(None),
            set_={"count": alerts_t.c["count"] + 1, "last_at": statement.excluded.last_at, "detail": merged}))


def _adding_refusals(session: Session, new_detail):
    """The new occurrence's detail (the latest refusal), with ``refused_events`` the open row's plus the
    new one's: an alert counts every refusal it covers, not the last unit's only. In the one statement
    that adds the occurrence, so two processes adding to the row at once lose neither's refusals."""
    old = func.coalesce(_json_int(session, alerts_t.c.detail), 0)
    total = old + func.coalesce(_json_int(session, new_detail), 0)
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.jsonb_set(cast(new_detail, JSONB), literal_column("'{refused_events}'"),
                                   func.to_jsonb(total)), Text)
    return func.json_set(new_detail, "$.refused_events", total)


def _json_int(session: Session, detail):
    if session.get_bind().dialect.name == "postgresql":
        return cast(cast(detail, JSONB).op("->>")(literal_column("'refused_events'")), BigInteger)
    return func.json_extract(detail, "$.refused_events")


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
