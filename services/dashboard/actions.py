"""Operator actions that change something, run exactly once, audited, and — when configured in
``four_eyes_actions`` — only after a second operator approves (maker-checker).

A page registers an action with :func:`action`; it submits a request with :func:`submit`. The
action's function runs inside the unit of work that also records the audit entry (and, for an
approved action, the approval), so the change, its audit entry and its approval commit together.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, TimeoutError as PoolTimeout

from shared.access import approvals, audit
from shared.access.errors import AlreadyDone, NotPending
from shared.access.sessions import Session
from shared.db.database import Tx, is_retryable
from shared.errors import Conflict, PointsnetError
from shared.models import PendingAction

Run = Callable[[Tx, Any, dict], dict]  # (tx, network, params) -> outcome
log = logging.getLogger("pointsnet.dashboard")


class ActionFailed(Conflict):
    """An approved action broke on something other than a refusal (a bug, a database error): it changed
    nothing, and its request is marked failed; the error itself is in the server's log."""
    code, title = "action_failed", "The action failed and changed nothing"


class ActionNotRun(PointsnetError):
    """An approved action met a database error that may pass (a lost connection, a statement or lock
    timeout, a conflict still there after the unit's retries): nothing changed, the approval rolled back
    with it, and the request is still waiting: approve it again once the database answers."""
    status, code, title = 503, "action_not_run", "The database did not answer; the request is still waiting"


# PostgreSQL errors that pass: connection exceptions (class 08), insufficient resources (53: too many
# connections, out of memory or disk), operator intervention (57: statement timeout, shutdown), a lock
# not obtained in time (55P03); serialization failures and deadlocks are is_retryable's.
_TRANSIENT_PG_CLASSES = ("08", "53", "57")
_TRANSIENT_PG_CODES = ("55P03",)


def is_transient(exc: BaseException) -> bool:
    """Whether a unit's error, after its retries, is the database's passing state rather than a fault that
    every approval would meet again."""
    if is_retryable(exc) or isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code:
        return code.startswith(_TRANSIENT_PG_CLASSES) or code in _TRANSIENT_PG_CODES
    # psycopg's failure to connect at all carries no SQLSTATE; SQLite's errors of that class are its
    # locks (is_retryable) and its own faults
    return isinstance(exc, OperationalError) and type(exc.orig).__module__.startswith("psycopg")


Check = Callable[[Tx, Any, dict], None]  # (tx, network, params): refuses what could not be approved


@dataclass(frozen=True)
class Action:
    name: str
    run: Run
    roles: tuple[str, ...] = ("operator",)
    check: Check | None = None  # run when asked, in the unit that files the request (or runs it at once)


ACTIONS: dict[str, Action] = {}


def action(name: str, roles: tuple[str, ...] = ("operator",), check: Check | None = None):
    def register(run: Run) -> Run:
        ACTIONS[name] = Action(name, run, roles, check)
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
    check = (lambda tx: spec.check(tx, network, params)) if spec.check else None
    if name in network.settings.four_eyes_actions:
        return Submitted(pending_id=network.tx(
            lambda tx: approvals.request(tx, actor, name, target, params, check=check)))

    def unit(tx: Tx) -> dict:
        if check is not None:
            check(tx)
        outcome = spec.run(tx, network, params)
        if outcome.get("repeated"):  # the same request ran meanwhile (its key): not a second one to audit
            raise AlreadyDone(f"this request ({name.replace('_', ' ')} of {target}) was already done")
        audit.record(tx, actor, name, target, params=params, outcome=outcome)
        return outcome

    return Submitted(outcome=network.tx(unit))


def decide(network, checker: Session, pending_id: int, *, approve: bool) -> dict | None:
    """Approve (and run) or reject a pending action. If the action itself is refused, or breaks on
    anything else, the approval rolls back with it and the request is marked failed with the reason
    (a generic one, ``action_failed``, for an error that is not a refusal): run once, or failed. A
    database error that may pass (``is_transient``) marks nothing: the request still waits, to be
    approved again (``ActionNotRun``, 503)."""

    def unit(tx: Tx) -> dict | None:
        row = approvals.take(tx, pending_id, checker, approve=approve)
        if not approve:
            return None
        params = approvals.params(row)
        outcome = ACTIONS[row.action].run(tx, network, params)
        if outcome.get("repeated"):
            # its key was already applied (by another way): nothing was done now, so no second audit of
            # the action; the approval's outcome and its own audit entry say so
            outcome = {key: value for key, value in outcome.items() if key != "repeated"} | {"already_applied": True}
            row.outcome = json.dumps(outcome, sort_keys=True, default=str)
            audit.record(tx, checker, "approval.already_applied", row.target, requested=row.action,
                         pending_id=row.id, entry_id=outcome.get("entry_id"))
            return outcome
        row.outcome = json.dumps(outcome, sort_keys=True, default=str)
        audit.record(tx, checker, row.action, row.target, params=params, outcome=outcome, pending_id=row.id)
        return outcome

    try:
        return network.tx(unit)
    except PointsnetError as error:
        if error.code in ("action_not_pending", "four_eyes_required"):
            raise
        _mark_failed(network, checker, pending_id, {"code": error.code, "detail": error.detail})
        raise
    except Exception as exc:
        if not approve:
            raise
        if is_transient(exc):  # the approval rolled back with the action, unless only COMMIT's answer was lost
            status, outcome = _decided(network, pending_id)
            if status == "approved":  # the COMMIT went through; its answer was lost on the way back
                log.warning("approved action %s ran; the database's answer to its COMMIT was lost (%s)",
                            pending_id, type(exc).__name__)
                return outcome
            log.warning("approved action %s not run: the database did not answer (%s); it is %s",
                        pending_id, type(exc).__name__, status or "of unknown status")
            if status == "pending":
                raise ActionNotRun(f"action {pending_id} was not run: the database did not answer in time "
                                   "(nothing changed). The request is still waiting: approve it again in a "
                                   "moment") from None
            raise ActionNotRun(f"action {pending_id}: the database did not answer in time, and whether the "
                               "action ran is not known yet. Look for the request under Approvals in a moment: "
                               "approve it again if it is still waiting (it runs once)") from None
        # Rolled back with the approval, like a refusal; its internals go to the log, not to the page or
        # the request (which operators and finance read).
        log.exception("approved action %s failed unexpectedly", pending_id)
        failure = ActionFailed(f"action {pending_id} failed unexpectedly and changed nothing; it is marked "
                               f"failed (the error is in the dashboard's log)")
        if not _mark_failed(network, checker, pending_id, {"code": failure.code, "detail": failure.detail}):
            raise NotPending(f"action {pending_id} is no longer waiting for a decision") from None
        raise failure from None


def _decided(network, pending_id: int) -> tuple[str | None, dict | None]:
    """The request's status and outcome as committed, read again after a database error; (None, None) when
    the database still does not answer."""
    try:
        row = network.tx(lambda tx: tx.session.execute(
            select(PendingAction.status, PendingAction.outcome).where(PendingAction.id == pending_id)).first(),
            readonly=True)
    except Exception:  # still unreachable: not known
        return None, None
    if row is None:
        return None, None
    return row.status, (json.loads(row.outcome) if row.outcome else None)


def _mark_failed(network, checker: Session, pending_id: int, refusal: dict) -> bool:
    """Mark the request failed with the reason and audit it; False if it was no longer pending."""

    def failed(tx: Tx) -> bool:
        # Only if still pending, in one conditional UPDATE: another approval of the same request may
        # have run meanwhile (on PostgreSQL this waits for it, then finds the row no longer pending).
        marked = tx.session.execute(
            update(PendingAction).where(PendingAction.id == pending_id, PendingAction.status == "pending")
            .values(status="failed", decided_by=checker.user_id, decided_at=tx.now,
                    outcome=json.dumps(refusal)))
        if marked.rowcount != 1:
            return False
        row = tx.session.get(PendingAction, pending_id)
        audit.record(tx, checker, "approval.failed", row.target, requested=row.action, pending_id=row.id,
                     **refusal)
        return True

    return network.tx(failed)
