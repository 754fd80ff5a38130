"""Maker-checker: a money-moving action asked for by one operator waits for a second one.

Which actions need a second operator is configuration (``POINTSNET_FOUR_EYES_ACTIONS``). The
checker's approval and the action itself commit in one transaction, so an approved action runs
exactly once; the database refuses a row decided by the operator who asked for it. The same
request is not filed again while it waits: approved twice, it would run twice. What makes two
requests "the same" depends on the action (``SAME_REQUEST``): by default the action, target and every
parameter; for some, the action and target alone; for a member adjustment, its form's request key,
which also may not be filed again once its request was approved.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from sqlalchemy import func, select

from shared.access import audit
from shared.access.errors import AlreadyDone, AlreadyPending, NotPending, SameOperator
from shared.db.database import Tx
from shared.db.advisory import lock_until_commit
from shared.models import PendingAction, StaffUser

# The actions that may be configured to need a second operator.
GUARDED_ACTIONS = frozenset({"member_adjustment", "member_erasure", "contract_change", "settlement_paid",
                             "partner_suspension"})
# Actions of which one request per target waits at a time, whatever its parameters: another bank reference
# for the same payment, another reason for the same erasure, or a reactivation beside a waiting suspension
# is the same decision asked twice (or a contradictory one), not a second request.
ONE_PER_TARGET = frozenset({"settlement_paid", "member_erasure", "partner_suspension"})
# Actions whose request is named by a key among its parameters (a form's own key): a request with the same
# key, waiting or already approved, is the same request, whatever its other parameters.
KEYED = {"member_adjustment": "request_key"}


def _waiting_or_done(tx: Tx, action: str, target: str | None, params: dict) -> PendingAction | None:
    """A request that makes this one a duplicate: waiting (any such action), or approved (a keyed one)."""
    key_name = KEYED.get(action)
    key = params.get(key_name) if key_name else None
    query = select(PendingAction).where(
        PendingAction.action == action,
        PendingAction.target.is_(None) if target is None else PendingAction.target == target,
        PendingAction.status.in_(("pending", "approved") if key is not None else ("pending",)))
    if key is not None:  # narrowed in SQL by the key as stored (sorted JSON), then compared exactly
        query = query.where(PendingAction.params.contains(f'"{key_name}": {json.dumps(key)}', autoescape=True))
    elif action not in ONE_PER_TARGET:
        query = query.where(PendingAction.params == json.dumps(params, sort_keys=True, default=str))
    rows = [row for row in tx.session.scalars(query.order_by(PendingAction.id))
            if key is None or json.loads(row.params).get(key_name) == key]
    # a waiting request first: it is the one to approve or reject
    return min(rows, key=lambda row: (row.status != "pending", row.id), default=None)


def request(tx: Tx, maker: Any, action: str, target: str | None, params: dict,
            check: Callable[[Tx], None] | None = None) -> int:
    """File a request for a second operator; AlreadyPending if the same one (by any operator) waits,
    AlreadyDone if a keyed one was approved. ``check`` refuses what could not be approved (a status the
    partner already has, a key the ledger already used), under the same lock as the duplicates."""
    stored = json.dumps(params, sort_keys=True, default=str)
    if tx.is_postgres:  # two filings of the same request at once: the second waits, then sees the first
        lock_until_commit(tx.session, "approval", action, target or "")
    what = f"({action.replace('_', ' ')}" + (f" of {target}" if target else "") + ")"
    existing = _waiting_or_done(tx, action, target, params)
    if existing is not None and existing.status == "pending":
        raise AlreadyPending(f"the same request {what} is already waiting for a second operator as "
                             f"#{existing.id}: approve or reject that one", pending_id=existing.id)
    if existing is not None:
        raise AlreadyDone(f"this request {what} was already done: it was approved as #{existing.id}",
                          pending_id=existing.id)
    if check is not None:
        check(tx)
    row = PendingAction(action=action, target=target, params=stored,
                        status="pending", requested_by=maker.user_id, requested_at=tx.now)
    tx.session.add(row)
    tx.session.flush()
    audit.record(tx, maker, "approval.requested", target, requested=action, pending_id=row.id, params=params)
    return row.id


def waiting(tx: Tx, action: str, target: str) -> int | None:
    """The id of a request of this action and target waiting for a second operator, if any."""
    return tx.session.scalar(select(PendingAction.id).where(
        PendingAction.action == action, PendingAction.target == target, PendingAction.status == "pending")
        .order_by(PendingAction.id).limit(1))


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
