"""My partner: a partner viewer's own partner — its settlement statements and its reports.

Operators and finance see the same page for any partner at /settlement/parties/{partner_id}.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from services.dashboard.paging import Paging, paging
from services.dashboard.security import require
from services.dashboard.views.settlement import statements_page

router = APIRouter()


@router.get("/my-partner")
def my_partner(request: Request, paged: Paging = Depends(paging), staff=Depends(require("partner_viewer"))):
    return statements_page(request, staff.partner_id, paged)
