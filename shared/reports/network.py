"""Network analytics for operators: points per day, liability, breakage, members, leaderboard, flow matrix."""

from __future__ import annotations

from shared.db.database import Tx
from shared.reports.members import active_by_partner, active_members, ratio
from shared.reports.money import net_by_party, unsettled_cycles
from shared.reports.movements import NETWORK, liability, movements
from shared.reports.partner import header, partner_names
from shared.reports.period import Period
from shared.reports.sql import ADJUSTED_OUT


def network_report(tx: Tx, period: Period, *, rollup: bool = True) -> dict:
    """The analytics; ``rollup=False`` aggregates every cycle from the ledger (the roll-ups' reference)."""
    names = partner_names(tx)
    by_day = movements(tx, period, by_party=False, rollup=rollup)
    by_party = movements(tx, period, by_cycle=False, rollup=rollup)
    issued = by_party.total("issued")
    redeemed = by_party.total("moved", category="redeemed")
    expired = by_party.breakage()  # expiry and debit adjustments: points that left unredeemed
    totals = {
        "issued": issued,
        "issued_by_partners": issued - by_party.total("issued", funder=NETWORK),
        "issued_by_network": by_party.total("issued", funder=NETWORK),
        "issue_reversed": by_party.total("moved", category="issue_reversed"),
        "redeemed": redeemed, "expired": expired,
        "adjusted_out": by_party.total("moved", category=ADJUSTED_OUT),
        "breakage_rate": ratio(expired, redeemed + expired),
        "active_members": active_members(tx, period, rollup=rollup),
    }
    series = {"issued": by_day.per_cycle("issued"),
              "issue_reversed": by_day.per_cycle("moved", category="issue_reversed"),
              "redeemed": by_day.per_cycle("moved", category="redeemed"),
              "expired": by_day.per_cycle_breakage(),
              "adjusted_out": by_day.per_cycle("moved", category=ADJUSTED_OUT)}
    daily = [{"cycle_date": day.isoformat()} | {name: values.get(day, 0) for name, values in series.items()}
             for day in period.days]
    active = active_by_partner(tx, period, rollup=rollup)
    net = net_by_party(tx, period)
    leaderboard = []
    for pid in sorted(names):
        if pid == NETWORK:
            continue
        row = {"partner_id": pid, "name": names[pid], "issued": by_party.total("issued", funder=pid),
               "redeemed_here": by_party.total("moved", category="redeemed", redeemer=pid),
               "redeemed_elsewhere": sum(v for (_c, cat, f, r), v in by_party.moved.items()
                                         if cat == "redeemed" and f == pid and r != pid),
               "active_members": active.get(pid, 0), "net_minor": net.get(pid, 0)}
        leaderboard.append(row)
    leaderboard.sort(key=lambda r: (-(r["issued"] + r["redeemed_here"]), r["name"], r["partner_id"]))
    cells = sorted(({"funder": f, "redeemer": r, "points": v} for (_c, cat, f, r), v in by_party.moved.items()
                    if cat == "redeemed" and v), key=lambda c: (c["funder"], c["redeemer"]))
    parties = sorted({c["funder"] for c in cells} | {c["redeemer"] for c in cells},
                     key=lambda pid: (pid == NETWORK, names.get(pid, pid), pid))
    return header(tx, "network", period) | {
        "totals": totals,
        "liability": liability(tx, period),
        "leaderboard": leaderboard,
        "flow_matrix": {"parties": [{"partner_id": pid, "name": names.get(pid, pid)} for pid in parties],
                        "cells": cells},
        "network_revenue_minor": net.get(NETWORK, 0),
        "unsettled_cycles": unsettled_cycles(tx, period),
        "daily": daily,
    }
