"""Reports: network analytics and a partner's performance report for a chosen period, with charts,
and the same report as JSON, CSV or HTML to download (shared/reports, as the API and CLI give them)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from services.dashboard.paging import Paging, page_of, paging
from services.dashboard.render import language, page
from services.dashboard.security import ensure_partner, network_of, require
from shared.ledger.cycles import cycle_date_for
from shared.reports.period import Period
from shared.reports.render import FORMATS, render
from shared.reports.service import build_network, build_partner

router = APIRouter()
DEFAULT_DAYS = 30
FLOW_CELLS = 100  # the largest flows charted and listed; the downloads hold every one


def period_of(network, first: str | None, last: str | None) -> Period:
    """The period asked for, or the last 30 cycles up to today's."""
    if not first and not last:
        today = cycle_date_for(network.clock.now(), network.settings)
        return Period(today - timedelta(days=DEFAULT_DAYS - 1), today)
    return Period.parse(first, last)


def daily_chart(report: dict, t, names: tuple[str, ...] | None = None) -> dict:
    """Points per day, one dataset per series (``names``: those series only, in that order), as the
    chart draws them and ``series_table`` lists them."""
    if names is None:
        names = [k for k in (report["daily"][0] if report["daily"] else {}) if k != "cycle_date"]
    return {"labels": [d["cycle_date"] for d in report["daily"]],
            "datasets": [{"label": t(f"series.{n}"), "data": [d[n] for d in report["daily"]]} for n in names]}


def expiry_chart(report: dict, t) -> dict:
    schedule = report["liability"]["expiry_schedule"]
    return {"labels": [t(f"month.{s['month']}") if s["month"] in ("due", "later") else s["month"] for s in schedule],
            "datasets": [{"label": t("series.points"), "data": [s["points"] for s in schedule]}]}


def _download(report: dict, fmt: str, locale: str, name: str) -> Response:
    return Response(render(report, fmt, locale), media_type=FORMATS[fmt],
                    headers={"content-disposition": f'attachment; filename="{name}.{fmt}"'})


def _lang(request: Request) -> str:
    return language(request)


@router.get("/reports")
def network_page(request: Request, first: str | None = Query(None, alias="from", max_length=10),
                 last: str | None = Query(None, alias="to", max_length=10), paged: Paging = Depends(paging),
                 staff=Depends(require("operator", "finance"))):
    network = network_of(request)
    period = period_of(network, first, last)
    report = build_network(network, period)
    from services.dashboard.i18n import translate

    t = lambda key: translate(key, _lang(request))  # noqa: E731
    names = {p["partner_id"]: p["name"] for p in report["flow_matrix"]["parties"]}
    every = report["flow_matrix"]["cells"]
    shown = sorted(every, key=lambda c: (-c["points"], c["funder"], c["redeemer"]))[:FLOW_CELLS]
    funders = sorted({c["funder"] for c in shown}, key=lambda p: (names.get(p, p), p))
    redeemers = sorted({c["redeemer"] for c in shown}, key=lambda p: (names.get(p, p), p))
    cells = {(c["funder"], c["redeemer"]): c["points"] for c in shown}
    flows = {"labels": [names.get(f, f) for f in funders],
             "datasets": [{"label": names.get(r, r), "data": [cells.get((f, r), 0) for f in funders]}
                          for r in redeemers]}
    board = report["leaderboard"]
    leaderboard = page_of(board[paged.offset:paged.offset + paged.limit], len(board), paged,
                          {"from": period.first.isoformat(), "to": period.last.isoformat()})
    return page(request, "reports_network.html", r=report, period=period, daily=daily_chart(report, t),
                expiry=expiry_chart(report, t), flows=flows, leaderboard=leaderboard,
                flow_cells=shown, flow_total=len(every),
                names=names, query=f"from={period.first.isoformat()}&to={period.last.isoformat()}")


@router.get("/reports/network/download")
def network_download(request: Request, first: str = Query(..., alias="from", max_length=10),
                     last: str = Query(..., alias="to", max_length=10),
                     fmt: str = Query("json", alias="format", pattern="^(json|csv|html)$"),
                     staff=Depends(require("operator", "finance"))):
    period = Period.parse(first, last)
    report = build_network(network_of(request), period)
    return _download(report, fmt, _lang(request), f"network-{period.first}-{period.last}")


@router.get("/reports/partner/{partner_id}")
def partner_page(request: Request, partner_id: str = Path(..., max_length=40),
                 first: str | None = Query(None, alias="from", max_length=10),
                 last: str | None = Query(None, alias="to", max_length=10),
                 staff=Depends(require("operator", "finance", "partner_viewer"))):
    ensure_partner(staff, partner_id)
    network = network_of(request)
    period = period_of(network, first, last)
    report = build_partner(network, partner_id, period)
    from services.dashboard.i18n import translate

    t = lambda key: translate(key, _lang(request))  # noqa: E731
    flows = report["flows"]
    others = {f["partner_id"]: f["name"] for f in flows["spent_elsewhere"] + flows["spent_here"]}
    order = sorted(others, key=lambda p: (others[p], p))
    elsewhere = {f["partner_id"]: f["points"] for f in flows["spent_elsewhere"]}
    here = {f["partner_id"]: f["points"] for f in flows["spent_here"]}
    flow_chart = {"labels": [others[p] for p in order],
                  "datasets": [{"label": t("flows.spent_elsewhere"), "data": [elsewhere.get(p, 0) for p in order]},
                               {"label": t("flows.spent_here"), "data": [here.get(p, 0) for p in order]}]}
    return page(request, "reports_partner.html", r=report, period=period, daily=daily_chart(report, t),
                expiry=expiry_chart(report, t), flows=flow_chart, partner_id=partner_id,
                query=f"from={period.first.isoformat()}&to={period.last.isoformat()}")


@router.get("/reports/partner/{partner_id}/download")
def partner_download(request: Request, partner_id: str = Path(..., max_length=40),
                     first: str = Query(..., alias="from", max_length=10),
                     last: str = Query(..., alias="to", max_length=10),
                     fmt: str = Query("json", alias="format", pattern="^(json|csv|html)$"),
                     staff=Depends(require("operator", "finance", "partner_viewer"))):
    ensure_partner(staff, partner_id)
    period = Period.parse(first, last)
    report = build_partner(network_of(request), partner_id, period)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in partner_id)
    return _download(report, fmt, _lang(request), f"partner-{safe}-{period.first}-{period.last}")
