"""The audit log: who changed what, newest first."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from services.dashboard.paging import Paging, page_of, paging
from services.dashboard.render import page
from services.dashboard.security import network_of, require
from shared.access import audit

router = APIRouter()


@router.get("/audit")
def audit_log(request: Request, action: str | None = Query(None, max_length=64),
              target: str | None = Query(None, max_length=200), paged: Paging = Depends(paging),
              staff=Depends(require("operator", "finance"))):
    rows, total = network_of(request).tx(lambda tx: audit.page(tx, offset=paged.offset, limit=paged.limit,
                                                               action=action or None, target=target or None),
                                         readonly=True)
    return page(request, "audit.html", entries=page_of(rows, total, paged, {"action": action, "target": target}),
                action=action or "", target=target or "")
