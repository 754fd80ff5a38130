"""Maker-checker: a money-moving action asked for by one operator waits for a second one.

Which actions need a second operator is configuration (``POINTSNET_FOUR_EYES_ACTIONS``). The
checker's approval and the action itself commit in one transaction, so an approved action runs
exactly once; the database refuses a row decided by the operator who asked for it. The same
request (action, target and parameters) is not filed again while it waits: approved twice, it would
run twice.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from shared.access import audit
from shared.access.errors import AlreadyPending, NotPending, SameOperator
from shared.db.advisory import lock_until_commit
from shared.db.database import Tx
from shared.models import PendingAction, StaffUser

# The actions that may be configured to need a second operator.
GUARDED_ACTIONS = frozenset({"member_adjustment", "member_erasure", "contract_change", "settlement_paid",
                             "partner_suspension"})


def request(tx: Tx, maker: Any, action: str, target: str | None, params: dict) -> int:
    """File a request for a second operator; AlreadyPending if the same one (by any operator) waits."""
    stored = json.dumps(params, sort_keys=True, default=str)
    if tx.is_postgres:  # two filings of the same request at once: the second waits, then sees the first
        lock_until_commit(tx.session, "approval", action, target or "")
    waiting = tx.session.scalar(select(PendingAction.id).where(
        PendingAction.action == action,
        PendingAction.target.is_(None) if target is None else PendingAction.target == target,
        PendingAction.params == stored, PendingAction.status == "pending").limit(1))
    if waiting is not None:
        raise AlreadyPending(f"the same request ({action.replace('_', ' ')}"
                             + (f" of {target}" if target else "") + f") is already waiting for a second "
                             f"operator as #{waiting}: approve or reject that one", pending_id=waiting)
    row = PendingAction(action=action, target=target, params=stored,
                        status="pending", requested_by=maker.user_id, requested_at=tx.now)
    tx.session.add(row)
    tx.session.flush()
    audit.record(tx, maker, "approval.requested", target, requested=action, pending_id=row.id, params=params)
    return row.id


def take(tx: Tx, pending_id: int, checker: Any, *, approve: bool) -> PendingAction:
    """Decide a pending action (locked for the rest of the unit). The caller runs an approved
    action in the same unit and stores its outcome."""
    row = tx.session.scalar(select(PendingAction).where(PendingAction.id == pending_id).with_for_update())
    if row is None or row.status != "pending":
        raise NotPending(f"action {pending_id} is not waiting for a decision")
    if row.requested_by == checker.user_id:
        raise SameOperator("you asked for this action: another operator must approve or reject it")
    row.status = "approved" if approve else "rejected"
    row.decided_by, row.decided_at = checker.user_id, tx.now
    audit.record(tx, checker, "approval.approved" if approve else "approval.rejected", row.target,
                 requested=row.action, pending_id=row.id)
    return row


def params(row: PendingAction) -> dict:
    return json.loads(row.params)


def page(tx: Tx, *, status: str | None = "pending", offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
    maker = StaffUser.__table__.alias("maker")
    checker = StaffUser.__table__.alias("checker")
    query = (select(PendingAction, maker.c.email, checker.c.email)
             .join(maker, maker.c.id == PendingAction.requested_by)
             .outerjoin(checker, checker.c.id == PendingAction.decided_by))
    counted = select(func.count()).select_from(PendingAction)
    if status:
        query, counted = query.where(PendingAction.status == status), counted.where(PendingAction.status == status)
    rows = tx.session.execute(query.order_by(PendingAction.id.desc()).offset(offset).limit(limit))
    return ([{"id": p.id, "action": p.action, "target": p.target, "params": json.loads(p.params), "status": p.status,
              "requested_by": p.requested_by, "maker": m, "requested_at": p.requested_at, "checker": c,
              "decided_at": p.decided_at, "outcome": p.outcome} for p, m, c in rows],
            tx.session.scalar(counted) or 0)
