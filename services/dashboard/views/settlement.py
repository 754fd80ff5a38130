"""Settlement: runs per cycle, net positions with payment status and "mark paid" (maker-checker),
the bilateral matrix, the run's files, a fresh verification of the run, and reconciliation of a
partner's own log against its statement.

A partner viewer may download its own statement here (and nothing else of a run); everything else
is for operators and finance.
"""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from services.dashboard.actions import action, submit
from services.dashboard.audited import read_then_audit
from services.dashboard.dates import cycle_in_path
from services.dashboard.i18n import notice
from services.dashboard.numbers import chart_amount, exact_amounts_as_money, exact_money, money_format
from services.dashboard.paging import Paging, page_of, paging
from services.dashboard.render import page
from services.dashboard.security import checked_form, ensure_partner, network_of, require
from shared.access.errors import Forbidden
from shared.errors import PointsnetError, UnknownPartner, ValidationFailed
from shared.ledger.cycles import cycle_date_for
from shared.settlement import positions
from shared.settlement.calendar import calendar_days
from shared.settlement.files import statement_name
from shared.money import MoneyError, currency_exponent, major_to_minor
from shared.settlement.finance import payable, record_payment
from shared.settlement.reconcile import verify_cycle_directory
from shared.settlement.runs import run_directory
from shared.signing_keys import public_keys

router = APIRouter()
MEDIA = {".csv": "text/csv; charset=utf-8", ".json": "application/json", ".sig": "application/json"}
BREAKS_SHOWN = 500
MAX_REFERENCE = 128
EXAMPLE_MINOR = 5956789  # the reconciliation page's example of a log's amount, in minor units
CALENDAR_AHEAD_DAYS, CALENDAR_SHOWN = 366, 100  # the payment calendar's coming year, as far as a page shows


@action("settlement_paid", roles=("operator", "finance"))
def settlement_paid(tx, network, params: dict) -> dict:
    """Record a bank transfer against a party's settlement, with the bank's reference and its amount in minor
    units (none: the whole amount outstanding, as a request filed before amounts were asked). Checked again
    here, under the settlement's lock: what is outstanding may have changed since the request was filed."""
    return record_payment(tx, date.fromisoformat(params["cycle_date"]), params["party"], params["bank_reference"],
                          params.get("amount_minor"))


def _today(network) -> date:
    return cycle_date_for(network.clock.now(), network.settings)


@router.get("/settlement")
def runs(request: Request, paged: Paging = Depends(paging), staff=Depends(require("operator", "finance"))):
    network = network_of(request)
    today = _today(network)

    def unit(tx):
        upcoming = calendar_days(tx, start=today, end=today + timedelta(days=CALENDAR_AHEAD_DAYS),
                                 limit=CALENDAR_SHOWN)
        return positions.runs_page(tx, today, offset=paged.offset, limit=paged.limit), upcoming
    (rows, total), upcoming = network.tx(unit, readonly=True)
    return page(request, "settlement.html", runs=page_of(rows, total, paged), calendar=upcoming)


@router.get("/settlement/parties/{partner_id}")
def party_statements(request: Request, partner_id: str = Path(..., max_length=40), paged: Paging = Depends(paging),
                     staff=Depends(require("operator", "finance", "partner_viewer"))):
    """A partner's statements across cycles (the page a partner viewer sees as /my-partner)."""
    ensure_partner(staff, partner_id)
    return statements_page(request, partner_id, paged)


def statements_page(request: Request, partner_id: str, paged: Paging):
    def unit(tx):
        names = positions.names_of(tx, [partner_id])
        if partner_id not in names or partner_id == "network":
            raise UnknownPartner(f"no partner {partner_id}")
        rows, total = positions.party_statements_page(tx, partner_id, offset=paged.offset, limit=paged.limit)
        return names[partner_id], rows, total

    network = network_of(request)
    name, rows, total = network.tx(unit, readonly=True)
    today = _today(network)
    return page(request, "partner_statements.html", partner_id=partner_id, partner_name=name,
                statements=page_of(rows, total, paged), first=(today - timedelta(days=29)).isoformat(),
                last=today.isoformat(), statement_file=statement_name(partner_id), today=today)


@router.get("/settlement/{cycle}")
def cycle_page(request: Request, cycle: date = Depends(cycle_in_path),
               tab: str = Query("positions", pattern="^(positions|matrix)$"),
               paged: Paging = Depends(paging), staff=Depends(require("operator", "finance"))):
    return _cycle_page(request, cycle, tab, paged)


def _cycle_page(request: Request, cycle: date, tab: str, paged: Paging, *, status_code: int = 200,
                refused: dict | None = None):
    """The cycle's page; ``refused``: a Mark paid form refused, shown above the table with the reason and,
    in its party's row, what was typed (docs/dashboard.md, "Refused forms")."""
    network = network_of(request)

    def unit(tx):
        nonlocal paged
        run = positions.run_of(tx, cycle)
        if refused:  # the page that shows the refused party's row, with what was typed in it
            paged = Paging(positions.position_offset(tx, cycle, refused["party"], paged.limit), paged.limit)
        if tab == "matrix":
            rows, total = positions.bilateral_page(tx, cycle, offset=paged.offset, limit=paged.limit)
        else:
            rows, total = positions.positions_page(tx, cycle, offset=paged.offset, limit=paged.limit)
        return run, rows, total, positions.payments_of(tx, cycle, [r["party"] for r in rows] if tab != "matrix" else [])

    run, rows, total, payments = network.tx(unit, readonly=True)
    # a refused Mark paid answers at the form's address: the table's page links lead to the cycle's own
    table = page_of(rows, total, paged, {"tab": tab},
                    path=f"{request.scope.get('root_path') or ''}/settlement/{cycle.isoformat()}" if refused else "")
    currency = network.settings.currency
    series = _matrix_chart(rows, currency) if tab == "matrix" else _positions_chart(rows, currency)
    return page(request, "settlement_cycle.html", status_code=status_code, cycle=cycle, run=run, tab=tab,
                table=table, payments=payments, series=series | {"money": money_format(currency)},
                exact_money=lambda a: exact_money(a, currency), currency=currency,
                amount_example=_amount_example(currency), refused=refused,
                message=None if refused else notice(request.query_params.get("message")), today=_today(network))


def _amount_example(currency: str) -> str:
    """How the Mark paid form's amount is typed: a plain decimal of major units (1234.56 for CNY)."""
    places = currency_exponent(currency)
    return "1234" + ("." + "56789"[:places] if places else "")


def _positions_chart(rows: list[dict], currency: str) -> dict:
    """Each party's net position in major units (the table beside it shows the same amounts as money)."""
    return {"labels": [r["name"] for r in rows],
            "datasets": [{"label": "net", "data": [chart_amount(r["net_minor"], currency) for r in rows]}]}


def _matrix_chart(rows: list[dict], currency: str) -> dict:
    """Payer → payee pairs of this page, one dataset per line kind, in major units (the table shows
    the same amounts as money)."""
    pairs: list[tuple[str, str]] = []
    for r in rows:
        if (r["payer"], r["payee"]) not in pairs:
            pairs.append((r["payer"], r["payee"]))
    kinds = sorted({r["kind"] for r in rows})
    amounts = {(r["payer"], r["payee"], r["kind"]): r["amount_minor"] for r in rows}
    names = {r["payer"]: r["payer_name"] for r in rows} | {r["payee"]: r["payee_name"] for r in rows}
    return {"labels": [f"{names[a]} → {names[b]}" for a, b in pairs],
            "datasets": [{"label": kind, "data": [chart_amount(amounts.get((a, b, kind), 0), currency)
                                                  for a, b in pairs]} for kind in kinds]}


@router.get("/settlement/{cycle}/files/{name}")
def download(request: Request, cycle: date = Depends(cycle_in_path), name: str = Path(..., max_length=120),
             staff=Depends(require("operator", "finance", "partner_viewer"))):
    """One of the run's files. A partner viewer gets only its own statement."""
    if staff.role == "partner_viewer":
        party = positions.party_of_file(name)
        if party is None:
            raise Forbidden("a partner viewer downloads only its own statement")
        ensure_partner(staff, party)
    path = network_of(request).tx(lambda tx: positions.settlement_file(tx, cycle, name), readonly=True)
    media = MEDIA.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, filename=f"{cycle.isoformat()}-{path.name}")


@router.post("/settlement/{cycle}/parties/{party}/paid")
def mark_paid(request: Request, cycle: date = Depends(cycle_in_path), party: str = Path(..., max_length=40),
              checked=Depends(checked_form("operator", "finance"))):
    """Record a payment with the bank's reference and, when the transfer moved only part of what is
    outstanding, its amount (major units, a plain decimal; blank: the whole outstanding): settlement_paid,
    which a second operator approves when the network asks for four eyes (the default)."""
    staff, form = checked
    reference = str(form.get("bank_reference", "")).strip()
    amount = str(form.get("amount", "")).strip()
    try:
        return _mark_paid(request, staff, cycle, party, reference, amount)
    except PointsnetError as error:  # the cycle's page, the reason above it, what was typed in the party's row
        return _cycle_page(request, cycle, "positions", Paging(), status_code=error.status, refused={
            "party": party, "code": error.code, "detail": error.detail,
            "bank_reference": reference[:MAX_REFERENCE], "amount": amount[:24]})


def _mark_paid(request: Request, staff, cycle: date, party: str, reference: str, amount: str):
    if not reference or len(reference) > MAX_REFERENCE:
        raise ValidationFailed(f"a bank reference (1 to {MAX_REFERENCE} characters) is required")
    network = network_of(request)
    amount_minor = None
    if amount:
        try:
            amount_minor = major_to_minor(amount, network.settings.currency, what="the amount")
        except MoneyError as exc:
            raise ValidationFailed(str(exc)) from None
        if amount_minor == 0:
            raise ValidationFailed("the amount is more than 0, or blank for the whole amount outstanding")
    # refuse at once what could never be approved: nothing due, recorded already, more than is outstanding
    network.tx(lambda tx: payable(tx, cycle, party, reference, amount_minor, lock=False), readonly=True)
    params = {"cycle_date": cycle.isoformat(), "party": party, "bank_reference": reference,
              "amount_minor": amount_minor}
    done = submit(network, staff, "settlement_paid", positions.payment_target(cycle, party), params)
    base = request.scope.get("root_path") or ""
    message = "requested" if done.pending_id is not None else "paid"
    return RedirectResponse(f"{base}/settlement/{cycle.isoformat()}?message={message}", status_code=303)


@router.post("/settlement/{cycle}/verify")
def verify_run(request: Request, cycle: date = Depends(cycle_in_path),
               checked=Depends(checked_form("operator", "finance"))):
    """Signature, digests, control totals and a recomputation from the ledger (`pointsnet reconcile DIR`):
    the run's directory holds its cycle's files, the manifest the run wrote (``verify_cycle_directory``)."""
    staff, _form = checked
    network = network_of(request)
    key = network.signing_key

    def read(tx):
        run = positions.run_of(tx, cycle)
        return verify_cycle_directory(tx, run_directory(tx, run.cycle_date), public_keys(tx, key.public_key()))

    checked, findings = read_then_audit(network, staff, "settlement.verify", cycle.isoformat(), read,
                                        lambda found: {"differences": len(found[1])})
    return page(request, "settlement_verified.html", cycle=cycle, checked=checked, findings=findings)


@router.get("/settlement/{cycle}/reconcile")
def reconcile_form(request: Request, cycle: date = Depends(cycle_in_path),
                   partner: str | None = Query(None, max_length=40),
                   staff=Depends(require("operator", "finance"))):
    network = network_of(request)
    network.tx(lambda tx: positions.run_of(tx, cycle), readonly=True)
    return page(request, "settlement_reconcile.html", cycle=cycle, partner=partner or "", breaks=None,
                **_log_unit(network.settings.currency))


@router.post("/settlement/{cycle}/reconcile")
def reconcile(request: Request, cycle: date = Depends(cycle_in_path),
              checked=Depends(checked_form("operator", "finance"))):
    """Match a partner's own log against its statement; the breaks on the page, or as CSV."""
    staff, form = checked
    partner = str(form.get("partner_id", "")).strip()
    network = network_of(request)
    try:
        breaks, as_csv = _reconciled(network, staff, cycle, partner, form)
    except PointsnetError as error:  # the form again, its party kept, the reason beside it (docs/dashboard.md)
        return page(request, "settlement_reconcile.html", status_code=error.status, cycle=cycle,
                    partner=partner[:40], breaks=None, error={"code": error.code, "detail": error.detail},
                    **_log_unit(network.settings.currency))
    if as_csv:
        return Response(positions.breaks_csv(breaks), media_type="text/csv; charset=utf-8", headers={
            "content-disposition": f'attachment; filename="breaks-{cycle.isoformat()}-{_safe(partner)}.csv"'})
    return page(request, "settlement_reconcile.html", cycle=cycle, partner=partner, breaks=breaks[:BREAKS_SHOWN],
                total_breaks=len(breaks), shown=BREAKS_SHOWN, **_log_unit(network.settings.currency))


def _reconciled(network, staff, cycle: date, partner: str, form) -> tuple[list, bool]:
    """The breaks between the uploaded log and the partner's statement (audited) and whether they are
    asked for as CSV; a PointsnetError for a form or a log that cannot be reconciled."""
    upload = form.get("log")
    if not partner or len(partner) > 40:
        raise ValidationFailed("choose the partner whose log this is")
    if upload is None or isinstance(upload, str):
        raise ValidationFailed("attach the partner's log (CSV: reference,kind,points,amount,time)")
    try:
        log = upload.file.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("the partner's log is not UTF-8 text") from None
    key = network.signing_key
    breaks = read_then_audit(
        network, staff, "settlement.reconcile", f"{cycle.isoformat()}/{partner}",
        lambda tx: positions.reconcile_partner_log(tx, cycle, partner, log, public_keys(tx, key.public_key())),
        lambda found: {"log": getattr(upload, "filename", None), "lines": log.count("\n"), "breaks": len(found),
                       "kinds": sorted({b.kind for b in found})})
    return breaks, form.get("format") == "csv"


def _log_unit(currency: str) -> dict:
    """What the page says of the log's amount (exact minor units) and how it shows a break's amounts
    (as money, exactly)."""
    example = EXAMPLE_MINOR
    factor = 10 ** currency_exponent(currency)  # how much too small a major amount reads (1: no minor unit)
    return {"as_money": lambda text: exact_amounts_as_money(text, currency),
            "log_example": {"minor": str(example), "major": chart_amount(example, currency),
                            "money": exact_money(example, currency), "factor": f"{factor:,}" if factor > 1 else None}}


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
