"""Signed webhooks to partners: endpoints, secrets, deliveries, dead letters.

A refusal is one line with its stable code, ``error: <code>: <detail>``, and exit status 2 (as every
command's, services.cli.main).
"""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table

from services.cli import webhooks_app, literal, show, _network, _signing_network


def _audited(verb: str, partner_id: str, change) -> dict:
    """Run an endpoint change with its audit entry, as the dashboard's (never the secret): user ``cli``."""
    from shared.webhooks.endpoints import audit_change

    def unit(tx):
        view = change(tx)
        audit_change(tx, None, verb, partner_id, view)
        return view

    return _network().tx(unit)


@webhooks_app.command("set")
def webhooks_set(partner_id: str, url: str = typer.Option(..., "--url", help="Where the partner receives events.")) -> None:
    """Register (or change) a partner's webhook URL; prints the endpoint, with its whsec_ secret only when
    this creates it (a changed URL keeps the secret, and it is not shown again: rotate-secret makes a new one)."""
    from shared.webhooks.endpoints import set_endpoint

    print(json.dumps(_audited("set", partner_id, lambda tx: set_endpoint(tx, partner_id, url)), indent=2))


@webhooks_app.command("rotate-secret")
def webhooks_rotate_secret(partner_id: str, overlap_hours: float = typer.Option(
        24, "--overlap-hours", min=0, help="How long the old secret keeps signing too.")) -> None:
    """Give the partner a new secret; the old one keeps signing alongside it during the overlap."""
    from datetime import timedelta

    from shared.webhooks.endpoints import rotate_secret

    print(json.dumps(_audited("secret_rotated", partner_id,
                              lambda tx: rotate_secret(tx, partner_id, timedelta(hours=overlap_hours))), indent=2))


@webhooks_app.command("disable")
def webhooks_disable(partner_id: str) -> None:
    """Stop sending to the partner (nothing new is queued; `webhooks set` enables it again)."""
    from shared.webhooks.endpoints import disable_endpoint

    print(json.dumps(_audited("disabled", partner_id, lambda tx: disable_endpoint(tx, partner_id)), indent=2))


@webhooks_app.command("show")
def webhooks_show(partner_id: str, secret: bool = typer.Option(
        False, "--secret", help="Show the current whsec_ secret too (audited): to give the partner a secret "
                                "whose set or rotate-secret answer was lost.")) -> None:
    """A partner's endpoint (without its secret, unless --secret)."""
    from shared.webhooks.endpoints import show_endpoint

    if not secret:
        print(json.dumps(_network(readonly=True).tx(lambda tx: show_endpoint(tx, partner_id), readonly=True),
                         indent=2))
        return
    print(json.dumps(_audited("secret_shown", partner_id, lambda tx: show_endpoint(tx, partner_id, secret=True)),
                     indent=2))


@webhooks_app.command("deliveries")
def webhooks_deliveries(dead: bool = typer.Option(False, "--dead", help="Only dead letters (retries exhausted)."),
                        partner: Optional[str] = typer.Option(None, "--partner", help="Only this partner's."),
                        limit: int = typer.Option(100, "--limit", min=1),
                        as_json: bool = typer.Option(False, "--json")) -> None:
    """Webhook deliveries, newest first: status, attempts, the receiver's last answer."""
    from shared.partners.contracts import require_partner
    from shared.webhooks.delivery import list_deliveries

    def deliveries(tx):
        if partner is not None:  # a partner that does not exist is unknown_partner, not "no deliveries"
            require_partner(tx, partner)
        return list_deliveries(tx, dead_only=dead, partner_id=partner, limit=limit)

    rows = _network(readonly=True).tx(deliveries, readonly=True)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="dead letters" if dead else "webhook deliveries")
    table.add_column("delivery", no_wrap=True)  # ids are copied into `webhooks replay`: never cut
    for column in ("partner", "event", "status", "attempts", "last", "next / done", "last error"):
        table.add_column(column)
    for row in rows:
        last = str(row["last_status_code"] or ("error" if row["last_error"] else ""))
        table.add_row(*(literal(value) for value in (
            row["delivery_id"], row["partner_id"], row["event_type"], row["status"], row["attempts"], last,
            row["next_attempt_at"] or row["delivered_at"] or row["dead_at"],
            (row["last_error"] or "")[:60])))  # the receiver's answer: its text, not markup
    show(table if rows else ("no dead letters" if dead else "no deliveries"))


@webhooks_app.command("show-delivery")
def webhooks_show_delivery(delivery_id: str) -> None:
    """One delivery with its body and every attempt."""
    from shared.webhooks.delivery import delivery_detail

    print(json.dumps(_network(readonly=True).tx(lambda tx: delivery_detail(tx, delivery_id), readonly=True),
                     indent=2))


@webhooks_app.command("deliver")
def webhooks_deliver() -> None:
    """Run the delivery job once now (the job runner does this every few seconds)."""
    from shared.webhooks.delivery import deliver_due

    print(json.dumps(deliver_due(_signing_network())))


@webhooks_app.command("replay")
def webhooks_replay(delivery_id: str) -> None:
    """Send a delivery again now (same webhook-id, attempts counted afresh in a fresh retry window): a
    delivered or dead one, or a pending one waiting for its next try; prints how it went. One a worker
    is sending right now is refused (delivery_pending)."""
    from shared.webhooks.delivery import replay

    print(json.dumps(replay(_signing_network(), delivery_id, audited=True), indent=2))
