"""Maker-checker: actions waiting for a second operator, and those decided."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse

from services.dashboard.actions import decide
from services.dashboard.paging import Paging, page_of, paging
from services.dashboard.render import page
from services.dashboard.security import checked_form, network_of, require
from services.dashboard.views.approval_details import details_of, outcomes_of
from shared.access import approvals
from shared.access.errors import NotPending
from shared.errors import PointsnetError

router = APIRouter()
# pending_actions.id is a 32-bit integer on PostgreSQL (a 64-bit one on SQLite): beyond it no action can be
# found, and the database would answer with an error (a 500), not with "no such row"
MAX_PENDING_ID = 2**31 - 1


@router.get("/approvals")
def approvals_page(request: Request, status: str = Query("pending", pattern="^(pending|approved|rejected|failed|all)$"),
                   message: str = Query("", pattern="^(|done|already_applied)$"), paged: Paging = Depends(paging), staff=Depends(require("operator"))):
    def unit(tx):
        rows, total = approvals.page(tx, status=None if status == "all" else status, offset=paged.offset,
                                     limit=paged.limit)
        return rows, total, details_of(tx, rows)  # the partner's name, a payment's amount (views/approval_details)

    rows, total, details = network_of(request).tx(unit, readonly=True)
    return page(request, "approvals.html", actions=page_of(rows, total, paged, {"status": status}), status=status,
                message=message, details=details, outcomes=outcomes_of(rows))


@router.post("/approvals/{pending_id}/{decision}")
def decide_action(request: Request, pending_id: int = Path(..., ge=1),
                  decision: str = Path(..., pattern="^(approve|reject)$"), checked=Depends(checked_form("operator"))):
    staff, _form = checked
    base = request.scope.get("root_path") or ""
    try:
        if pending_id > MAX_PENDING_ID:  # the same answer as any id that is not pending
            raise NotPending(f"action {pending_id} is not waiting for a decision")
        outcome = decide(network_of(request), staff, pending_id, approve=decision == "approve")
    except PointsnetError as error:
        return page(request, "error.html", status_code=error.status, code=error.code, detail=error.detail)
    message = "already_applied" if outcome and outcome.get("already_applied") else "done"
    return RedirectResponse(f"{base}/approvals?status=all&message={message}", status_code=303)
