"""Operator actions that change something, run exactly once, audited, and — when configured in
``four_eyes_actions`` — only after a second operator approves (maker-checker).

A page registers an action with :func:`action`; it submits a request with :func:`submit`. The
action's function runs inside the unit of work that also records the audit entry (and, for an
approved action, the approval), so the change, its audit entry and its approval commit together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import update

from shared.access import approvals, audit
from shared.access.sessions import Session
from shared.db.database import Tx
from shared.errors import PointsnetError
from shared.models import PendingAction

Run = Callable[[Tx, Any, dict], dict]  # (tx, network, params) -> outcome


@dataclass(frozen=True)
class Action:
    name: str
    run: Run
    roles: tuple[str, ...] = ("operator",)


ACTIONS: dict[str, Action] = {}


def action(name: str, roles: tuple[str, ...] = ("operator",)):
    def register(run: Run) -> Run:
        ACTIONS[name] = Action(name, run, roles)
        return run

    return register


@dataclass(frozen=True)
class Submitted:
    pending_id: int | None = None
    outcome: dict | None = None


def submit(network, actor: Session, name: str, target: str | None, params: dict) -> Submitted:
    """Run the action now, or queue it for a second operator when the network says so."""
    spec = ACTIONS[name]
    if actor.role not in spec.roles:
        from shared.access.errors import Forbidden

        raise Forbidden(f"the {actor.role} role may not {name.replace('_', ' ')}")
    if name in network.settings.four_eyes_actions:
        return Submitted(pending_id=network.tx(lambda tx: approvals.request(tx, actor, name, target, params)))

    def unit(tx: Tx) -> dict:
        outcome = spec.run(tx, network, params)
        audit.record(tx, actor, name, target, params=params, outcome=outcome)
        return outcome

    return Submitted(outcome=network.tx(unit))


def decide(network, checker: Session, pending_id: int, *, approve: bool) -> dict | None:
    """Approve (and run) or reject a pending action. If the action itself is refused, the
    approval rolls back with it and the request is marked failed with the reason."""

    def unit(tx: Tx) -> dict | None:
        row = approvals.take(tx, pending_id, checker, approve=approve)
        if not approve:
            return None
        params = approvals.params(row)
        outcome = ACTIONS[row.action].run(tx, network, params)
        row.outcome = json.dumps(outcome, sort_keys=True, default=str)
        audit.record(tx, checker, row.action, row.target, params=params, outcome=outcome, pending_id=row.id)
        return outcome

    try:
        return network.tx(unit)
    except PointsnetError as error:
        if error.code in ("action_not_pending", "four_eyes_required"):
            raise
        refusal = {"code": error.code, "detail": error.detail}

        def failed(tx: Tx) -> None:
            # Only if still pending, in one conditional UPDATE: another approval of the same request may
            # have run meanwhile (on PostgreSQL this waits for it, then finds the row no longer pending).
            marked = tx.session.execute(
                update(PendingAction).where(PendingAction.id == pending_id, PendingAction.status == "pending")
                .values(status="failed", decided_by=checker.user_id, decided_at=tx.now,
                        outcome=json.dumps(refusal)))
            if marked.rowcount == 1:
                row = tx.session.get(PendingAction, pending_id)
                audit.record(tx, checker, "approval.failed", row.target, requested=row.action, pending_id=row.id,
                             **refusal)

        network.tx(failed)
        raise
