"""Partner merchants: registration, signing keys, status, limits; a signed call by hand."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from services.cli import (MISTAKE, TROUBLE, app, partners_app, keys_app, fail, literal, show, whole_minor, _network,
                          _read_text)


@partners_app.command("add")
def partners_add(
    name: str,
    public_key: Optional[Path] = typer.Option(None, "--public-key", help="The partner's Ed25519 public key (PEM)."),
    billing: str = typer.Option("postpaid", help="postpaid or prepaid"),
    point_value: str = typer.Option("1", help="Minor units one redeemed point is worth to the redeemer."),
    issuance_fee: str = typer.Option("0", help="Network fee per point issued, in minor units."),
    redemption_fee_rate: str = typer.Option("0", help="Share of a reimbursement paid to the network, e.g. 0.05."),
    breakage_share: str = typer.Option("0", help="Share of expired prepaid value the network keeps."),
    base_rate: str = typer.Option("1", help="Points per major currency unit spent."),
    float_overdraft: Optional[str] = typer.Option(None, help="Prepaid only: issuance may take the float this far "
                                                            "below zero (minor units; default 0); 'none' for no "
                                                            "float limit."),
    exposure_limit: Optional[str] = typer.Option(None, help="Alert when the partner's outstanding points are "
                                                            "worth more than this (minor units)."),
) -> None:
    """Register a partner (contract version 1, optionally its first key); prints JSON."""
    from shared.partners.contracts import ContractTerms
    from shared.partners.onboarding import onboard

    key_text = _read_text(public_key) if public_key else None
    network = _network()
    terms = ContractTerms(billing, point_value, issuance_fee, redemption_fee_rate, breakage_share, base_rate)
    if float_overdraft is not None and billing != "prepaid":  # a postpaid partner has no float to overdraw
        fail(f"--float-overdraft is for a prepaid partner (--billing prepaid); this one is {billing}")
    overdraft = _optional_minor(float_overdraft or "0", "--float-overdraft") if billing == "prepaid" else None
    exposure_limit = None if exposure_limit is None else whole_minor(exposure_limit, "--exposure-limit")

    created = network.tx(lambda tx: onboard(tx, name, terms, public_key=key_text, float_overdraft_minor=overdraft,
                                            exposure_limit_minor=exposure_limit))
    print(json.dumps(created))


@keys_app.command("add")
def keys_add(partner_id: str, public_key: Path = typer.Option(..., "--public-key", help="Ed25519 public key (PEM).")):
    """Add a key to a partner (at most two active: rotate by adding, then revoking the old one)."""
    from shared.partners import keys

    text = _read_text(public_key)
    print(json.dumps(_network().tx(lambda tx: keys.add_key(tx, partner_id, text))))


@keys_app.command("revoke")
def keys_revoke(key_id: str):
    """Revoke a key at once: requests signed with it are refused from now on."""
    from shared.partners import keys

    print(json.dumps(_network().tx(lambda tx: keys.revoke_key(tx, key_id))))


@keys_app.command("list")
def keys_list(partner_id: str):
    """List a partner's keys."""
    from shared.partners import keys
    from shared.partners.contracts import require_partner

    def unit(tx):
        require_partner(tx, partner_id)  # an unknown partner is an error, not an empty list
        return keys.list_keys(tx, partner_id)

    print(json.dumps(_network(readonly=True).tx(unit, readonly=True), indent=2))


@partners_app.command("keygen")
def partners_keygen(out: str = typer.Option("partner-key", help="Path prefix: writes PREFIX.pem and PREFIX.pub.pem")):
    """Write a new Ed25519 key pair for a partner to keep (the private key never leaves the partner)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from shared.signing import private_key_pem, public_key_pem

    # the prefix as typed: a Path would drop a trailing / (--out keys/ wrote keys.pem beside the folder)
    prefix = Path(out)
    if out.endswith(("/", os.sep)) or prefix.name in ("", ".", ".."):
        fail(f"--out is a path prefix ending in a file name (e.g. keys/acme writes keys/acme.pem), not {out!r}")
    private, public = prefix.with_name(prefix.name + ".pem"), prefix.with_name(prefix.name + ".pub.pem")
    try:
        exists = private.exists()
    except OSError as exc:  # a name longer than the file system allows
        fail(f"cannot write the key pair to {out}: {exc.strerror or exc}")
    if exists:
        fail(f"{private} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    made: list[Path] = []
    try:
        private.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        made.append(private)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_key_pem(key))
        if not public.exists():
            made.append(public)
        public.write_bytes(public_key_pem(key.public_key()))
    except OSError as exc:  # a directory on the way that is a file, or that may not be written, a full disk
        for path in made:  # no empty or half key is left to refuse the retry ("exists; refusing to overwrite")
            path.unlink(missing_ok=True)
        fail(f"cannot write the key pair to {out}: {exc.strerror or exc}")
    print(json.dumps({"private_key": str(private), "public_key": str(public)}))


@app.command("partner-call")
def partner_call(
    method: str,
    path: str,
    body: Optional[str] = typer.Option(None, "--json", help="JSON body (or @file)."),
    key_file: Path = typer.Option(..., help="The partner's private key (PEM)."),
    key_id: str = typer.Option(..., help="The key id the network gave for it."),
    url: str = typer.Option("http://127.0.0.1:8400", help="The network's base URL."),
    idempotency_key: Optional[str] = typer.Option(None, help="Reuse a key to retry an operation."),
) -> None:
    """Call the partner API by hand: signs the request, verifies the signed answer, prints it (JSON
    indented; a CSV or HTML file as it came)."""
    import httpx

    from shared.sdk import PointsnetAPIError, PointsnetClient, ResponseSignatureError
    from shared.signing import load_private_key

    try:
        base = httpx.URL(url)
    except httpx.InvalidURL:
        base = None
    if base is None or base.scheme not in ("http", "https") or not base.host:
        fail(f"--url must be the network's http:// or https:// address, not {url!r}")
    payload = None
    if body is not None:
        text = _read_text(Path(body[1:])) if body.startswith("@") else body
        try:
            payload = json.loads(text)
        except ValueError as exc:
            fail(f"--json is not valid JSON: {exc}")
    try:
        private_key = load_private_key(key_file.read_bytes())
    except OSError as exc:
        fail(f"cannot read {key_file}: {exc.strerror or exc}")
    except (ValueError, TypeError):  # not PEM, not Ed25519, or encrypted
        fail(f"{key_file} is not an unencrypted Ed25519 private key (PEM)")
    with PointsnetClient(url, key_id, private_key) as client:
        try:
            answer = client.call(method, path, payload, idempotency_key=idempotency_key)
        except PointsnetAPIError as error:  # also a proxy's own unsigned 413: body_too_large
            print(json.dumps(error.problem, indent=2))
            raise typer.Exit(TROUBLE if error.status >= 500 else MISTAKE)  # refused (4xx), or the network failed
        except httpx.HTTPError as exc:  # unreachable (after the retries), or no keys where the network's should be
            fail(f"no answer from {url}: {(str(exc) or type(exc).__name__).splitlines()[0]}", TROUBLE)
        except ResponseSignatureError as exc:
            fail(str(exc).splitlines()[0], TROUBLE)  # an answer the network did not sign
    if answer.content and not _is_json(answer.headers.get("content-type", "")):
        typer.echo(answer.content, nl=False)  # a CSV or HTML file: the bytes as they came
        return
    print(json.dumps(answer.body, indent=2))


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _set_partner_status(partner_id: str, status: str) -> None:
    from shared.partners.lifecycle import set_status

    print(json.dumps(_network().tx(lambda tx: set_status(tx, partner_id, status))))


@partners_app.command("suspend")
def partners_suspend(partner_id: str) -> None:
    """Suspend a partner: the API refuses its POSTs with 403 partner_suspended (its signed reads still
    answer: statements, reports, transactions); settlement continues."""
    _set_partner_status(partner_id, "suspended")


@partners_app.command("reactivate")
def partners_reactivate(partner_id: str) -> None:
    """Lift a suspension (a terminated partner cannot come back)."""
    _set_partner_status(partner_id, "active")


@partners_app.command("terminate")
def partners_terminate(partner_id: str,
                       buy_out_rate: Optional[str] = typer.Option(
                           None, help="Buy the partner's outstanding points out at this share of their value "
                                      "(e.g. 0.8); without it, the partner keeps paying for them.")) -> None:
    """Terminate a partner: the open cycle is its last; its points stay redeemable elsewhere. It keeps
    reimbursing their redemptions, or with --buy-out-rate pays once and the network takes them over."""
    from shared.money import rate_to_ppm
    from shared.partners.lifecycle import terminate

    rate = None if buy_out_rate is None else rate_to_ppm(buy_out_rate, what="--buy-out-rate")
    settlement = "keep_paying" if rate is None else "buy_out"
    print(json.dumps(_network().tx(lambda tx: terminate(tx, partner_id, settlement=settlement,
                                                        buy_out_rate_ppm=rate))))


def _optional_minor(text: str, option: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        fail(f"{option} must be 0 or more")
    return whole_minor(text, option)


@partners_app.command("limits")
def partners_limits(
    partner_id: str,
    float_overdraft: Optional[str] = typer.Option(None, help="Minor units below zero the float may go; 'none' "
                                                             "lifts the float limit."),
    exposure_limit: Optional[str] = typer.Option(None, help="Exposure alert limit in minor units; 'none' lifts it."),
    exposure_warn: Optional[str] = typer.Option(None, help="Share of the exposure limit that raises a warning, "
                                                           "e.g. 0.8."),
) -> None:
    """Show or change a partner's finance limits; prints JSON."""
    from shared.money import rate_to_ppm
    from shared.partners.limits import _limits, limits_json, set_limits

    changes: dict = {}
    if float_overdraft is not None:
        changes["float_overdraft_minor"] = _optional_minor(float_overdraft, "--float-overdraft")
    if exposure_limit is not None:
        changes["exposure_limit_minor"] = _optional_minor(exposure_limit, "--exposure-limit")
    if exposure_warn is not None:
        changes["exposure_warn_ppm"] = rate_to_ppm(exposure_warn, what="--exposure-warn")

    def unit(tx):
        if changes:
            from shared.access import audit

            changed = set_limits(tx, partner_id, **changes)
            audit.record(tx, None, "partner.limits_changed", partner_id, changes=changes, limits=changed)
            return changed
        from shared.partners.contracts import require_partner

        require_partner(tx, partner_id)
        return limits_json(_limits(tx, partner_id))

    print(json.dumps({"partner_id": partner_id} | _network().tx(unit)))


@partners_app.command("list")
def partners_list() -> None:
    """List partners."""
    from sqlalchemy import select

    from shared.models import Partner

    from shared.partners.lifecycle import lifecycle_status

    network = _network(readonly=True)
    rows, status = network.tx(lambda tx: (tx.session.execute(select(Partner.id, Partner.name)
                                                              .order_by(Partner.name)).all(), lifecycle_status(tx)),
                              readonly=True)
    table = Table("partner id", "name", "status")
    for partner_id, name in rows:
        table.add_row(literal(partner_id), literal(name), status[partner_id])
    show(table)
