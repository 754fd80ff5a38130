"""Overview: today's and the last 30 days' figures, from the same SQL aggregates as the reports."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select

from services.dashboard.i18n import translate
from services.dashboard.render import language, page
from services.dashboard.security import network_of, require
from services.dashboard.views.reports import daily_chart
from shared.ledger.cycles import cycle_date_for
from shared.models import Alert, SettlementRun
from shared.reports.network import network_report
from shared.reports.period import Period

router = APIRouter()
TRAILING_DAYS = 30
DAILY_SERIES = ("issued", "redeemed", "expired")  # the chart's and its table's series


@router.get("/")
def overview(request: Request, staff=Depends(require("operator", "finance"))):
    network = network_of(request)

    def unit(tx):
        today = cycle_date_for(tx.now, tx.settings)
        trailing = network_report(tx, Period(today - timedelta(days=TRAILING_DAYS - 1), today))
        last_run = tx.session.scalar(select(SettlementRun).order_by(SettlementRun.cycle_date.desc()).limit(1))
        alerts = tx.session.scalar(select(func.count()).select_from(Alert).where(Alert.acknowledged_at.is_(None)))
        return today, trailing, last_run, alerts

    today, trailing, last_run, alerts = network.tx(unit, readonly=True)
    day = trailing["daily"][-1] if trailing["daily"] else {}
    t = lambda key: translate(key, language(request))  # noqa: E731
    return page(request, "overview.html", today=today, day=day, totals=trailing["totals"],
                liability=trailing["liability"], last_run=last_run, alerts=alerts,
                daily=daily_chart(trailing, t, DAILY_SERIES),
                leaderboard=trailing["leaderboard"][:10])
