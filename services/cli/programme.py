"""Earn rules and campaigns, operator alerts, members."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table


from services.cli import (rules_app, alerts_app, members_app, console, fail, literal, show, _network, _read_text,
                          _signing_network)


@rules_app.command("set")
def rules_set(
    document: Path,
    partner: Optional[str] = typer.Option(None, help="The partner whose rules these are."),
    network_wide: bool = typer.Option(False, "--network", help="Network-wide (network-funded) campaigns."),
    effective_from: Optional[str] = typer.Option(
        None, help="RFC 3339 instant with seconds and its offset, e.g. 2026-12-01T00:00:00+08:00; default: now."),
) -> None:
    """Validate a rules document and store it as the scope's next version."""
    from shared.clock import parse_rfc3339
    from shared.errors import ValidationFailed
    from shared.rules.store import set_rules

    if bool(partner) == network_wide:
        fail("give either --partner ID or --network")
    text = _read_text(document)
    when = None
    if effective_from is not None:
        try:
            when = parse_rfc3339(effective_from)
        except ValueError:
            fail(f"--effective-from is an RFC 3339 instant with seconds and its offset "
                 f"(e.g. 2026-12-01T00:00:00+08:00), not {effective_from!r}")
    scope = "network" if network_wide else partner
    try:
        stored = _network().tx(lambda tx: set_rules(tx, scope, text, when))
    except ValidationFailed as error:
        fail(f"{error.code}: {_one_line(error)}", 2)
    print(json.dumps(stored))


def _one_line(error) -> str:
    """A refused rules document's reason in one line: a syntax error's already is (the parser's own
    several lines are put in one by shared.rules.document.syntax_problem, as the dashboard shows it)."""
    return " ".join(error.detail.split())


@rules_app.command("show")
def rules_show(partner: Optional[str] = typer.Option(None), network_wide: bool = typer.Option(False, "--network")):
    """Print the rules in force now for a partner or the network."""
    from shared.partners.contracts import require_partner
    from shared.rules.store import rules_in_force, tier_warnings

    if bool(partner) == network_wide:
        fail("give either --partner ID or --network")
    scope = "network" if network_wide else partner

    def in_force(tx):
        if scope != "network":  # a partner that does not exist is unknown_partner, not "no rules set"
            require_partner(tx, scope)
        return rules_in_force(tx, scope, tx.now)

    network = _network(readonly=True)
    found = network.tx(in_force, readonly=True)
    if found is None:
        fail(f"no rules set for {scope}; earns use the contract's base rate")
    warnings = tier_warnings(network.settings, found[1])
    for warning in warnings:
        typer.echo(f"warning: version {found[0]}: {warning}", err=True)
    print(json.dumps({"scope": scope, "version": found[0], "rules": found[1].model_dump(mode="json"),
                      "warnings": warnings}, indent=2))


@rules_app.command("check")
def rules_check() -> None:
    """Name every rules version in force or scheduled whose tier multipliers name a tier the tiers
    configured now (POINTSNET_TIERS) do not have; exit 1 if there is one. Run it after changing the tiers."""
    from shared.rules.store import rules_naming_unknown_tiers

    found = _network(readonly=True).tx(rules_naming_unknown_tiers, readonly=True)
    for item in found:
        for warning in item["warnings"]:
            typer.echo(f"{item['scope']} version {item['version']} ({item['status']}): {warning}", err=True)
    if found:
        raise typer.Exit(1)
    typer.echo("every rules version in force or scheduled names only configured tiers")


@alerts_app.command("list")
def alerts_list(include_acknowledged: bool = typer.Option(False, "--all", help="Include acknowledged alerts."),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """Open alerts, newest first."""
    from shared.alerts import list_alerts

    rows = _network(readonly=True).tx(lambda tx: list_alerts(tx, include_acknowledged=include_acknowledged), readonly=True)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("id", "kind", "partner", "member", "count", "last", "detail", title="alerts")
    for row in rows:
        table.add_row(str(row["id"]), literal(row["kind"]), literal(row["partner_id"]), literal(row["member_id"]),
                      str(row["count"]), row["last_at"], literal(json.dumps(row["detail"], sort_keys=True)))
    show(table if rows else "no open alerts")


@alerts_app.command("ack")
def alerts_ack(alert_id: int) -> None:
    """Acknowledge an alert (it stays in the history)."""
    from shared.alerts import acknowledge

    # an id no 64-bit column holds is no alert's: refused here, not by the database
    if not 0 < alert_id < 2**63 or not _network().tx(lambda tx: acknowledge(tx, alert_id)):
        fail(f"no open alert {alert_id}")
    console.print(f"acknowledged alert {alert_id}")


@members_app.command("show")
def members_show(member_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A member's balance, tier (qualifying points, next review), activity status and histories."""
    from shared.programme.summary import member_summary

    view = _network(readonly=True).tx(lambda tx: member_summary(tx, member_id), readonly=True)
    if as_json:
        print(json.dumps(view, indent=2))
        return
    tier = view["tier"] or {}
    console.print(f"member {member_id} (enrolled {view['enrolled_at']})\n"
                  f"balance: {view['balance']['available']} available, {view['balance']['held']} held\n"
                  f"tier: {tier.get('tier', 'tiers off')}, {tier.get('qualifying_points', 0)} qualifying points"
                  f"{', review ' + tier['review_at'] if tier.get('review_at') else ''}\n"
                  f"activity: {view['activity_status']}", highlight=False, markup=False)
    table = Table("at", "from", "to", "reason", "qualifying points", title="tier history")
    for change in view["tier_history"]:
        table.add_row(*(literal(change[key]) for key in ("at", "from", "to", "reason", "qualifying_points")))
    show(table if view["tier_history"] else "no tier changes")


@members_app.command("merge")
def members_merge(survivor: str, duplicate: str,
                  reason: Optional[str] = typer.Option(None, help="Why (kept with the merge record).")) -> None:
    """Merge DUPLICATE into SURVIVOR: balance, lots, holds, links and history move; the merge is recorded."""
    from shared.programme.merge import merge_members

    print(json.dumps(_network().tx(lambda tx: merge_members(tx, survivor, duplicate, reason=reason)), indent=2))


@members_app.command("erase")
def members_erase(member_id: str,
                  reason: Optional[str] = typer.Option(None, help="The operator's reference for the request "
                                                                   "(kept with the erasure; no personal data).")) -> None:
    """Erase a member's personal data (contact ciphertexts and blind-index values). Its remaining points are
    forfeited as breakage; the ledger keeps its opaque id and stays verifiable. Refused while holds are open."""
    print(json.dumps(_signing_network().erase_member(member_id, reason=reason), indent=2))


@members_app.command("status-counts")
def members_status_counts() -> None:
    """Members by activity status (active, at_risk, dormant), as JSON."""
    from shared.programme.status import status_counts

    print(json.dumps(_network(readonly=True).tx(status_counts, readonly=True)))
