"""Partners: the directory, onboarding, contract versions, keys, webhook endpoint and deliveries,
earn rules, suspension. Operators change; finance reads.

Contract changes and suspensions are maker-checker actions (services.dashboard.actions); every
other change here is audited in the transaction that makes it.
"""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse

from services.dashboard.actions import action, submit
from services.dashboard.dates import form_date, form_instant
from services.dashboard.numbers import is_decimal
from services.dashboard.i18n import notice
from services.dashboard.paging import Paging, page_of, paging
from services.dashboard.render import page
from services.dashboard.security import checked_form, network_of, require
from shared.access import approvals, audit
from shared.errors import PointsnetError, UnknownPartner, ValidationFailed
from shared.partners import directory, keys
from shared.partners.contracts import (ContractTerms, add_contract_version, contract_version_date,
                                      first_effective_date, require_partner)
from shared.partners.lifecycle import PartnerTerminated, refuse_status, set_status
from shared.partners.onboarding import onboard as onboard_partner
from shared.rules.store import rule_versions, rules_naming_unknown_tiers, set_rules
from shared.webhooks import delivery, endpoints

router = APIRouter()
PARTNER_ID = Path(..., max_length=40)
TERM_FIELDS = ("billing", "point_value", "issuance_fee", "redemption_fee_rate", "breakage_share", "base_rate")
NUMBER_TERMS = TERM_FIELDS[1:]
TERM_DEFAULTS = {"billing": "postpaid", "point_value": "1", "issuance_fee": "0", "redemption_fee_rate": "0",
                 "breakage_share": "0", "base_rate": "1"}
MAX_FIELD = 200
MAX_DOCUMENT = 200_000
NETWORK_SCOPE = "network"  # the rules scope of network-wide campaigns (shared.rules.store)
KEYS_SHOWN = 10  # the summary lists the active keys (two at most) among the newest


# -- maker-checker actions -------------------------------------------------------------------

def _contract_date(tx, network, params: dict) -> None:
    """A date that could never be approved (past, today's cycle, within the notice, not after a version
    already added, beyond the horizon) is refused when asked, not queued; approval checks it again."""
    effective = date.fromisoformat(params["effective_from"]) if params.get("effective_from") else None
    contract_version_date(tx, params["partner_id"], effective)


@action("contract_change", check=_contract_date)
def change_contract(tx, network, params: dict) -> dict:
    terms = ContractTerms(**params["terms"])
    effective = date.fromisoformat(params["effective_from"]) if params.get("effective_from") else None
    return add_contract_version(tx, params["partner_id"], terms, effective)


def _status_changes(tx, network, params: dict) -> None:
    """A status the partner already has (a stale Suspend form) is refused when asked, not queued."""
    require_partner(tx, params["partner_id"])
    refuse_status(tx, params["partner_id"], params["status"])


@action("partner_suspension", check=_status_changes)
def change_status(tx, network, params: dict) -> dict:
    return set_status(tx, params["partner_id"], params["status"], refuse_unchanged=True)


# -- helpers ---------------------------------------------------------------------------------

def _to(request: Request, path: str, message: str | None = None) -> RedirectResponse:
    base = request.scope.get("root_path") or ""
    return RedirectResponse(f"{base}{path}" + (f"?message={message}" if message else ""), status_code=303)


def _text(form, name: str, default: str = "", limit: int = MAX_FIELD) -> str:
    value = str(form.get(name) or default).strip()
    if len(value) > limit:
        raise ValidationFailed(f"{name} is at most {limit} characters")
    return value


def _terms(form) -> tuple[dict, ContractTerms]:
    written = {name: _text(form, name, TERM_DEFAULTS[name]) for name in TERM_FIELDS}
    for name in NUMBER_TERMS:  # the numbers: Decimal() would also read "１" or "nan"
        if not is_decimal(written[name]):
            raise ValidationFailed(f"{name} is a number 0 or more in the digits 0-9 (e.g. 1.5), "
                                   f"not {written[name][:20]!r}")
    terms = ContractTerms(**written)
    terms.to_columns()  # refuses bad billing, precision or range now, before anything is written or queued
    return written, terms


def _profile(request: Request, partner_id: str) -> dict:
    return network_of(request).tx(lambda tx: directory.partner_profile(tx, partner_id), readonly=True)


def _submitted(request: Request, partner_id: str, done) -> RedirectResponse:
    return _to(request, f"/partners/{partner_id}", "requested" if done.pending_id else "done")


# -- directory and onboarding ----------------------------------------------------------------

@router.get("/partners")
def partners_page(request: Request, name: str = Query("", max_length=MAX_FIELD), paged: Paging = Depends(paging),
                  staff=Depends(require("operator", "finance"))):
    rows, total = network_of(request).tx(lambda tx: directory.partners_page(
        tx, offset=paged.offset, limit=paged.limit, name=name or None), readonly=True)
    return page(request, "partners.html", partners=page_of(rows, total, paged, {"name": name}), name=name)


@router.get("/partners/new")
def onboarding_form(request: Request, staff=Depends(require("operator"))):
    return page(request, "partner_new.html", values=TERM_DEFAULTS | {"name": "", "public_key": ""}, error=None)


@router.post("/partners")
def onboard(request: Request, checked=Depends(checked_form("operator"))):
    """One transaction: the partner, its first contract, its first key and the audit entry, or nothing."""
    staff, form = checked
    values = {name: str(form.get(name) or "") for name in (*TERM_FIELDS, "name", "public_key")}
    try:
        name = _text(form, "name")
        public_key = _text(form, "public_key", limit=10_000)
        written, terms = _terms(form)

        def unit(tx):
            created = onboard_partner(tx, name, terms, public_key=public_key or None)
            audit.record(tx, staff, "partner.created", created["partner_id"], name=name, terms=written,
                         key_id=created.get("key_id"))
            return created

        created = network_of(request).tx(unit)
    except PointsnetError as error:
        return page(request, "partner_new.html", status_code=error.status, values=values,
                    error={"code": error.code, "detail": error.detail})
    return _to(request, f"/partners/{created['partner_id']}", "created")


@router.get("/partners/network-rules")
def network_rules_page(request: Request, paged: Paging = Depends(paging), staff=Depends(require("operator", "finance"))):
    """Network-wide (network-funded) campaigns: the same editor for the "network" scope."""
    return _rules(request, NETWORK_SCOPE, paged)


@router.post("/partners/network-rules")
def save_network_rules(request: Request, checked=Depends(checked_form("operator"))):
    return _save_rules(request, NETWORK_SCOPE, checked)


@router.get("/partners/{partner_id}")
def partner_page(request: Request, partner_id: str = PARTNER_ID, staff=Depends(require("operator", "finance"))):
    def unit(tx):
        profile = directory.partner_profile(tx, partner_id)
        active = [k for k in directory.keys_page(tx, partner_id, limit=KEYS_SHOWN)[0]
                  if k["status"] == "active"]
        try:
            hook = endpoints.show_endpoint(tx, partner_id)
        except PointsnetError:
            hook = None
        return profile, active, hook, delivery.counts_by_status(tx, partner_id), \
            approvals.waiting(tx, "partner_suspension", partner_id)

    profile, active, hook, counts, status_pending = network_of(request).tx(unit, readonly=True)
    return page(request, "partner.html", partner=profile, active_keys=active, webhook=hook, counts=counts,
                status_pending=status_pending,
                tab="summary", message=notice(request.query_params.get("message")))



@router.post("/partners/{partner_id}/status")
def request_status(request: Request, partner_id: str = PARTNER_ID, checked=Depends(checked_form("operator"))):
    staff, form = checked
    status = str(form.get("status") or "")
    if status not in ("active", "suspended"):
        raise ValidationFailed("status is active or suspended")
    _profile(request, partner_id)  # refuses an unknown partner before anything is queued
    done = submit(network_of(request), staff, "partner_suspension", partner_id,
                  {"partner_id": partner_id, "status": status})
    return _submitted(request, partner_id, done)


# -- contracts -------------------------------------------------------------------------------

@router.get("/partners/{partner_id}/contracts")
def contracts_page(request: Request, partner_id: str = PARTNER_ID, paged: Paging = Depends(paging),
                   staff=Depends(require("operator", "finance"))):
    return _contracts(request, partner_id, paged)


def _contracts(request: Request, partner_id: str, paged: Paging, *, values: dict | None = None,
               error: dict | None = None, status_code: int = 200):
    def unit(tx):
        return directory.partner_profile(tx, partner_id), directory.contract_versions(
            tx, partner_id, offset=paged.offset, limit=paged.limit), first_effective_date(tx)

    profile, (rows, total), next_day = network_of(request).tx(unit, readonly=True)
    if values is None:
        latest = profile["latest_contract"] or {}
        if latest and date.fromisoformat(latest["effective_from"]) >= next_day:
            # the day after the latest version; none after the calendar's last day (a version stored
            # there before the horizon existed): that day itself, which the form then refuses
            last = date.fromisoformat(latest["effective_from"])
            next_day = last + timedelta(days=1) if last < date.max else last
        values = {name: latest.get(name, TERM_DEFAULTS[name]) for name in TERM_FIELDS} | {
            "effective_from": next_day.isoformat()}
    return page(request, "partner_contracts.html", status_code=status_code, partner=profile, tab="contracts",
                versions=page_of(rows, total, paged), values=values, error=error)


@router.post("/partners/{partner_id}/contracts")
def request_contract(request: Request, partner_id: str = PARTNER_ID, checked=Depends(checked_form("operator"))):
    staff, form = checked
    values = {name: str(form.get(name) or "") for name in (*TERM_FIELDS, "effective_from")}
    try:
        written, _terms_checked = _terms(form)
        effective = form_date(_text(form, "effective_from"), "effective_from")
        _profile(request, partner_id)  # refuses an unknown partner before anything is queued
        done = submit(network_of(request), staff, "contract_change", partner_id,
                      {"partner_id": partner_id, "terms": written,
                       "effective_from": effective.isoformat() if effective else None})
    except PointsnetError as error:
        return _contracts(request, partner_id, Paging(), values=values, status_code=error.status,
                          error={"code": error.code, "detail": error.detail})
    return _to(request, f"/partners/{partner_id}/contracts", "requested" if done.pending_id else "done")


# -- keys ------------------------------------------------------------------------------------

@router.get("/partners/{partner_id}/keys")
def keys_page(request: Request, partner_id: str = PARTNER_ID, paged: Paging = Depends(paging),
              staff=Depends(require("operator", "finance"))):
    return _keys(request, partner_id, paged)


def _keys(request: Request, partner_id: str, paged: Paging, *, public_key: str = "", error: dict | None = None,
          status_code: int = 200):
    def unit(tx):
        return directory.partner_profile(tx, partner_id), directory.keys_page(
            tx, partner_id, offset=paged.offset, limit=paged.limit)

    profile, (rows, total) = network_of(request).tx(unit, readonly=True)
    return page(request, "partner_keys.html", status_code=status_code, partner=profile, tab="keys",
                keys=page_of(rows, total, paged), public_key=public_key, error=error,
                message=notice(request.query_params.get("message")))


@router.post("/partners/{partner_id}/keys")
def add_key(request: Request, partner_id: str = PARTNER_ID, checked=Depends(checked_form("operator"))):
    staff, form = checked
    typed = str(form.get("public_key") or "")
    try:
        text = _text(form, "public_key", limit=10_000)

        def unit(tx):
            added = keys.add_key(tx, partner_id, text)
            audit.record(tx, staff, "partner.key_added", partner_id, key_id=added["key_id"])
            return added

        network_of(request).tx(unit)
    except PointsnetError as error:
        return _keys(request, partner_id, Paging(), public_key=typed, status_code=error.status,
                     error={"code": error.code, "detail": error.detail})
    return _to(request, f"/partners/{partner_id}/keys", "done")


@router.post("/partners/{partner_id}/keys/{key_id}/revoke")
def revoke_key(request: Request, partner_id: str = PARTNER_ID, key_id: str = Path(..., max_length=64),
               checked=Depends(checked_form("operator"))):
    staff, _form = checked

    def unit(tx):
        if directory.key_partner(tx, key_id) != partner_id:
            raise keys.UnknownKey(f"partner {partner_id} has no key {key_id}")
        revoked = keys.revoke_key(tx, key_id)
        audit.record(tx, staff, "partner.key_revoked", partner_id, key_id=key_id)
        return revoked

    network_of(request).tx(unit)
    return _to(request, f"/partners/{partner_id}/keys", "done")


# -- webhooks --------------------------------------------------------------------------------

@router.get("/partners/{partner_id}/webhooks")
def webhooks_page(request: Request, partner_id: str = PARTNER_ID,
                  status: str = Query("", pattern="^(|pending|delivered|dead|cancelled)$"),
                  paged: Paging = Depends(paging),
                  staff=Depends(require("operator", "finance"))):
    return _webhooks(request, partner_id, paged, status)


def _webhooks(request: Request, partner_id: str, paged: Paging, status: str = "", *, secret: str | None = None,
              values: dict | None = None, error: dict | None = None, status_code: int = 200):
    """The webhook page; a refused form comes back with what was typed into it (``values``: its ``url``
    or ``overlap_hours``) beside the error."""
    def unit(tx):
        profile = directory.partner_profile(tx, partner_id)
        try:
            hook = endpoints.show_endpoint(tx, partner_id)
        except PointsnetError:
            hook = None
        rows = delivery.list_deliveries(tx, partner_id=partner_id, status=status or None, offset=paged.offset,
                                        limit=paged.limit)
        total = delivery.count_deliveries(tx, partner_id=partner_id, status=status or None)
        return profile, hook, rows, total, delivery.counts_by_status(tx, partner_id)

    profile, hook, rows, total, counts = network_of(request).tx(unit, readonly=True)
    return page(request, "partner_webhooks.html", status_code=status_code, partner=profile, tab="webhooks",
                webhook=hook, deliveries=page_of(rows, total, paged, {"status": status}), status=status,
                counts=counts, secret=secret, values=values or {}, error=error,
                message=notice(request.query_params.get("message")))


def _endpoint_change(request: Request, partner_id: str, staff, verb: str, change, values: dict | None = None) -> object:
    """Run an endpoint change with its audit entry (never the secret); show a new secret once. Refused,
    the page comes back with the form's ``values`` as typed."""
    def unit(tx):
        view = change(tx)
        endpoints.audit_change(tx, staff, verb, partner_id, view)
        return view

    try:
        view = network_of(request).tx(unit)
    except PointsnetError as error:
        return _webhooks(request, partner_id, Paging(), values=values, status_code=error.status,
                         error={"code": error.code, "detail": error.detail})
    if view.get("secret"):
        return _webhooks(request, partner_id, Paging(), secret=view["secret"])
    return _to(request, f"/partners/{partner_id}/webhooks", "done")


@router.post("/partners/{partner_id}/webhooks")
def set_webhook(request: Request, partner_id: str = PARTNER_ID, checked=Depends(checked_form("operator"))):
    staff, form = checked
    url = str(form.get("url") or "")[:2100]
    return _endpoint_change(request, partner_id, staff, "set", lambda tx: endpoints.set_endpoint(tx, partner_id, url),
                            {"url": url})


@router.post("/partners/{partner_id}/webhooks/rotate-secret")
def rotate_webhook_secret(request: Request, partner_id: str = PARTNER_ID, checked=Depends(checked_form("operator"))):
    staff, form = checked
    text = str(form.get("overlap_hours") or "24").strip()
    typed = {"overlap_hours": text}
    hours = float(text) if is_decimal(text) else -1  # float() would also read "２４", "inf" or "nan"
    if not 0 <= hours <= 24 * 30:  # the page again, beside the form, with what was typed
        refused = ValidationFailed("the overlap is between 0 and 720 hours")
        return _webhooks(request, partner_id, Paging(), values=typed, status_code=refused.status,
                         error={"code": refused.code, "detail": refused.detail})
    return _endpoint_change(request, partner_id, staff, "secret_rotated",
                            lambda tx: endpoints.rotate_secret(tx, partner_id, timedelta(hours=hours)), typed)


@router.post("/partners/{partner_id}/webhooks/disable")
def disable_webhook(request: Request, partner_id: str = PARTNER_ID, checked=Depends(checked_form("operator"))):
    staff, _form = checked
    return _endpoint_change(request, partner_id, staff, "disabled",
                            lambda tx: endpoints.disable_endpoint(tx, partner_id))


@router.post("/partners/{partner_id}/webhooks/deliveries/{delivery_id}/replay")
def replay_delivery(request: Request, partner_id: str = PARTNER_ID, delivery_id: str = Path(..., max_length=40),
                    checked=Depends(checked_form("operator"))):
    """Queue a delivery again (audited with it), then make its first attempt at once: a delivered or dead
    one, or a pending one waiting for its next try. One a worker is sending right now is refused (409
    delivery_pending), and so is one whose endpoint is disabled (409 endpoint_disabled: nothing would be
    sent), a cancelled one (409 delivery_cancelled), one naming a member no longer linked to the partner
    or erased (409 member_not_linked) and one about a member to a terminated partner (403
    partner_terminated), on the webhook page."""
    staff, _form = checked
    network = network_of(request)

    def unit(tx):
        found = delivery.delivery_detail(tx, delivery_id)
        if found["partner_id"] != partner_id:
            raise delivery.UnknownDelivery(f"partner {partner_id} has no webhook delivery {delivery_id}")
        queued = delivery.queue_replay(tx, delivery_id)
        delivery.audit_replay(tx, staff, partner_id, delivery_id, queued)

    try:
        network.tx(unit)
    except (delivery.DeliveryPending, delivery.EndpointDisabled, delivery.DeliveryCancelled, delivery.MemberNotLinked,
            PartnerTerminated) as error:
        return _webhooks(request, partner_id, Paging(), status_code=error.status,
                         error={"code": error.code, "detail": error.detail})
    delivery.deliver_due(network, rounds=1, delivery_ids=[delivery_id])
    return _to(request, f"/partners/{partner_id}/webhooks", "done")


# -- earn rules and campaigns ------------------------------------------------------------------

@router.get("/partners/{partner_id}/rules")
def rules_page(request: Request, partner_id: str = PARTNER_ID, paged: Paging = Depends(paging),
               staff=Depends(require("operator", "finance"))):
    return _rules(request, _real_partner(partner_id), paged)


def _real_partner(partner_id: str) -> str:
    if partner_id == NETWORK_SCOPE:  # the network's own scope has its own page
        raise UnknownPartner(f"no partner {partner_id}")
    return partner_id


def _rules(request: Request, partner_id: str, paged: Paging, *, document: str | None = None,
           effective_from: str = "", error: dict | None = None, status_code: int = 200):
    def unit(tx):
        profile = None if partner_id == NETWORK_SCOPE else directory.partner_profile(tx, partner_id)
        # the warnings at the top cover every version in force or scheduled, not just this page's
        return (profile, rule_versions(tx, partner_id, offset=paged.offset, limit=paged.limit),
                rules_naming_unknown_tiers(tx, partner_id))

    profile, (rows, total), warnings = network_of(request).tx(unit, readonly=True)
    if document is None:
        document = _pretty(rows[0]["document"]) if rows and paged.offset == 0 else ""
    template = "network_rules.html" if partner_id == NETWORK_SCOPE else "partner_rules.html"
    return page(request, template, status_code=status_code, partner=profile, tab="rules",
                versions=page_of(rows, total, paged), warnings=warnings, document=document,
                effective_from=effective_from,
                error=error, message=notice(request.query_params.get("message")), pretty=_pretty)


def _pretty(document: str) -> str:
    import json

    return json.dumps(json.loads(document), indent=2, ensure_ascii=False)


@router.post("/partners/{partner_id}/rules")
def save_rules(request: Request, partner_id: str = PARTNER_ID, checked=Depends(checked_form("operator"))):
    return _save_rules(request, _real_partner(partner_id), checked)


def _save_rules(request: Request, partner_id: str, checked):
    """The same validation as `pointsnet rules set`: the document's problems are shown beside it."""
    staff, form = checked
    document = str(form.get("document") or "")
    effective_text = str(form.get("effective_from") or "").strip()[:MAX_FIELD]
    try:
        if len(document) > MAX_DOCUMENT:
            raise ValidationFailed(f"the rules document is at most {MAX_DOCUMENT} characters")
        when = form_instant(effective_text, "effective_from")

        def unit(tx):
            stored = set_rules(tx, partner_id, document, when)
            audit.record(tx, staff, "network.rules_set" if partner_id == NETWORK_SCOPE else "partner.rules_set",
                         partner_id, version=stored["version"], effective_from=stored["effective_from"])
            return stored

        network_of(request).tx(unit)
    except PointsnetError as error:
        return _rules(request, partner_id, Paging(), document=document, effective_from=effective_text,
                      status_code=error.status, error={"code": error.code, "detail": error.detail})
    where = "/partners/network-rules" if partner_id == NETWORK_SCOPE else f"/partners/{partner_id}/rules"
    return _to(request, where, "done")
