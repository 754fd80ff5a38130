"""Ledger: the transaction explorer (filters, entry detail with its proof status) and the integrity check."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request

from services.dashboard.audited import read_then_audit
from services.dashboard.dates import form_date
from services.dashboard.paging import Paging, page_of, paging
from services.dashboard.render import page
from services.dashboard.security import checked_form, network_of, require
from shared.ledger.explorer import EntryFilter, entries_page, entry_detail
from shared.ledger.verify import CHECKS, TREE_CHECKS, verify
from shared.models.ledger import ENTRY_KINDS
from shared.settlement.files import exact
from shared.transparency.checkpoints import NoCheckpoint, checkpoint_json, latest
from shared.transparency.inclusion import inclusion_status

router = APIRouter()
ID = r"^[A-Za-z0-9_.:\-]{1,64}$"


@router.get("/ledger")
def explorer(request: Request, partner: str | None = Query(None, max_length=64),
             member: str | None = Query(None, max_length=64), kind: str | None = Query(None, max_length=16),
             first: str | None = Query(None, alias="from", max_length=10),
             last: str | None = Query(None, alias="to", max_length=10),
             reference: str | None = Query(None, max_length=128), paged: Paging = Depends(paging),
             staff=Depends(require("operator", "finance"))):
    where = EntryFilter(partner_id=partner or None, member_id=member or None, kind=kind or None,
                        first=form_date(first, "from"), last=form_date(last, "to"), reference=reference or None)
    rows, total, more = network_of(request).tx(
        lambda tx: entries_page(tx, where, offset=paged.offset, limit=paged.limit), readonly=True)
    query = {"partner": partner, "member": member, "kind": kind, "from": first, "to": last, "reference": reference}
    return page(request, "ledger.html", entries=page_of(rows, total, paged, query), filters=query,
                kinds=ENTRY_KINDS, more=more)


@router.get("/ledger/entries/{entry_id}")
def entry(request: Request, entry_id: str = Path(..., pattern=ID), staff=Depends(require("operator", "finance"))):
    detail, proof = network_of(request).tx(
        lambda tx: (entry_detail(tx, entry_id), inclusion_status(tx, entry_id)), readonly=True)
    return page(request, "ledger_entry.html", detail=detail, proof=proof, exact=exact)


def _last_checkpoint(tx) -> dict | None:
    try:
        return checkpoint_json(latest(tx))
    except NoCheckpoint:
        return None


@router.get("/ledger/integrity")
def integrity(request: Request, staff=Depends(require("operator", "finance"))):
    checkpoint = network_of(request).tx(_last_checkpoint, readonly=True)
    return page(request, "ledger_integrity.html", checkpoint=checkpoint, report=None, checks=_descriptions())


def _descriptions() -> dict[str, str]:
    return {name: description for name, (description, _sql) in CHECKS.items()} | TREE_CHECKS


@router.post("/ledger/integrity")
def run_integrity(request: Request, checked=Depends(checked_form("operator", "finance"))):
    """`pointsnet verify` on demand; the run and its result go to the audit log."""
    staff, _form = checked
    network = network_of(request)
    public_key = network.signing_key.public_key()

    report, checkpoint = read_then_audit(
        network, staff, "ledger.verify", None, lambda tx: (verify(tx, public_key=public_key), _last_checkpoint(tx)),
        lambda done: {"ok": done[0].ok, "offences": len(done[0].offences),
                      "checks": sorted({o.check for o in done[0].offences})})
    checks = _descriptions()
    results = [{"check": name, "description": description,
                "offences": [o for o in report.offences if o.check == name]} for name, description in checks.items()]
    return page(request, "ledger_integrity.html", checkpoint=checkpoint, report=report, results=results,
                checks=checks)
