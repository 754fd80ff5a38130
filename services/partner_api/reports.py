"""``GET /v1/reports``: the calling partner's performance report, in JSON, CSV or HTML.

The partner is the one the request's key belongs to; there is no partner parameter, so a
partner only ever sees its own report. The answer is signed like every other.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.partner_api.routes import problems
from shared.reports.period import Period
from shared.reports.service import FORMATS, partner_document

router = APIRouter(prefix="/v1")


@router.get("/reports", response_class=Response, responses={
    200: {"description": "The report (docs/reports.md defines every figure)",
          "content": {"application/json": {"schema": {"type": "object"}},
                      "text/csv": {"schema": {"type": "string"}},
                      "text/html": {"schema": {"type": "string"}}}},
    **problems("invalid_period")})
def partner_report(request: Request,
                   first: str = Query(..., alias="from", description="first cycle, YYYY-MM-DD"),
                   last: str = Query(..., alias="to", description="last cycle, YYYY-MM-DD (included)"),
                   fmt: Literal["json", "csv", "html"] = Query("json", alias="format")):
    """Your performance report for the cycles `from` … `to` (at most 400): points issued and redeemed,
    liability and its expiry schedule, cross-partner flows, members, settled money, campaign effect."""
    period = Period.parse(first, last)
    document = partner_document(request.app.state.network, request.state.partner_id, period, fmt)
    return Response(document, media_type=FORMATS[fmt])
