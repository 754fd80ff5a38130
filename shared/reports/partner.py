"""The partner performance report: one partner, any period of cycles, every figure from SQL sums."""

from __future__ import annotations

from sqlalchemy import select

from shared.db.database import Tx
from shared.errors import UnknownPartner
from shared.models import Partner
from shared.reports.campaigns import campaign_effect
from shared.reports.members import member_figures
from shared.reports.money import money
from shared.reports.movements import NETWORK, liability, movements
from shared.reports.sql import ADJUSTED_OUT
from shared.reports.period import Period

FORMAT_VERSION = 1


def partner_names(tx: Tx) -> dict[str, str]:
    return {pid: name for pid, name in tx.session.execute(select(Partner.id, Partner.name))} | {NETWORK: NETWORK}


def header(tx: Tx, kind: str, period: Period) -> dict:
    return {"report": kind, "format_version": FORMAT_VERSION,
            "period": period.json() | {"timezone": tx.settings.timezone, "currency": tx.settings.currency}}


def _flows(totals: dict[str, int], names: dict[str, str]) -> list[dict]:
    return [{"partner_id": pid, "name": names.get(pid, pid), "points": points}
            for pid, points in sorted(totals.items(), key=lambda item: (-item[1], item[0])) if points]


def partner_report(tx: Tx, partner_id: str, period: Period, *, rollup: bool = True) -> dict:
    """The report; ``rollup=False`` aggregates every cycle from the ledger (the roll-ups' reference)."""
    names = partner_names(tx)
    if partner_id not in names or partner_id == NETWORK:
        raise UnknownPartner(f"no partner {partner_id}")
    p = partner_id
    moves = movements(tx, period, p, rollup=rollup)
    redeemed_here = {k: v for k, v in moves.moved.items() if k[1] == "redeemed" and k[3] == p}
    spent_here: dict[str, int] = {}
    for (_cycle, _cat, funder, _redeemer), moved in redeemed_here.items():
        spent_here[funder] = spent_here.get(funder, 0) + moved
    spent_elsewhere: dict[str, int] = {}
    for (_cycle, category, funder, redeemer), moved in moves.moved.items():
        if category == "redeemed" and funder == p and redeemer != p:
            spent_elsewhere[redeemer] = spent_elsewhere.get(redeemer, 0) + moved
    points = {
        "issued": moves.total("issued", funder=p),
        "issue_reversed": moves.total("moved", category="issue_reversed", funder=p),
        "redeemed_here": sum(redeemed_here.values()),
        "redeemed_here_own_points": spent_here.get(p, 0),
        "redeemed_here_other_partners_points": sum(v for k, v in spent_here.items() if k not in (p, NETWORK)),
        "redeemed_here_network_points": spent_here.get(NETWORK, 0),
        "redeemed_elsewhere": sum(spent_elsewhere.values()),
        "expired": moves.breakage(funder=p),  # breakage: expiry and debit adjustments
        "adjusted_out": moves.total("moved", category=ADJUSTED_OUT, funder=p),  # … of which debit adjustments
        "network_funded_awarded_here": moves.total("issued", funder=NETWORK, partner=p),
    }
    series = {"issued": moves.per_cycle("issued", funder=p),
              "redeemed_here": moves.per_cycle("moved", category="redeemed", redeemer=p),
              "redeemed_elsewhere": {}, "expired": moves.per_cycle_breakage(funder=p),
              "adjusted_out": moves.per_cycle("moved", category=ADJUSTED_OUT, funder=p)}
    for (cycle, category, funder, redeemer), moved in moves.moved.items():
        if category == "redeemed" and funder == p and redeemer != p:
            series["redeemed_elsewhere"][cycle] = series["redeemed_elsewhere"].get(cycle, 0) + moved
    daily = [{"cycle_date": day.isoformat()} | {name: values.get(day, 0) for name, values in series.items()}
             for day in period.days]
    return header(tx, "partner", period) | {
        "partner": {"id": p, "name": names[p]},
        "points": points,
        "liability": liability(tx, period, p),
        "flows": {"spent_elsewhere": _flows(spent_elsewhere, names),
                  "spent_here": _flows({k: v for k, v in spent_here.items() if k != p}, names)},
        "members": member_figures(tx, p, period, rollup=rollup),
        "money": money(tx, p, period, rollup=rollup),
        "campaigns": campaign_effect(tx, p, period, rollup=rollup),
        "daily": daily,
    }
