"""Members: search (blind index or id), the member page with masked personal data, lots and
transactions; operators' adjustments and erasures (maker-checker actions), and the audited view
of full personal data. Finance reads, masked.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from services.dashboard.actions import action, submit
from services.dashboard.numbers import is_whole
from services.dashboard.i18n import notice
from services.dashboard.paging import Paging, page_of, paging
from services.dashboard.render import page
from services.dashboard.security import checked_form, network_of, require
from shared.access import audit
from shared.access.errors import AlreadyDone, AlreadyPending
from shared.errors import HoldsOpen, InvalidPoints, MemberErased, PointsnetError, UnknownMember, ValidationFailed
from shared.ledger.events import MAX_POINTS
from shared.ledger.adjustments import MAX_REASON, adjust_member
from shared.ledger.queries import member_lots_page, member_movements_page
from shared.members import directory
from shared.members.enrolment import find_member
from shared.members.erasure import count_open_holds, erase_member
from shared.models import Entry
from shared.programme.summary import member_summary
from shared.settlement.positions import names_of

router = APIRouter()
MEMBER_ID = Path(..., max_length=40)
MAX_REQUEST_KEY = 64


# -- maker-checker actions -------------------------------------------------------------------

def _key_unused(tx, network, params: dict) -> None:
    """A request key the ledger already used is a form sent again: refused when asked, not filed."""
    entry_id = tx.session.scalar(select(Entry.id).where(
        Entry.kind == "adjustment", Entry.partner_id.is_(None),
        Entry.reference == f"adjustment:{params['request_key']}").limit(1))
    if entry_id is not None:
        raise AlreadyDone(f"this adjustment was already done (entry {entry_id}): the same form was sent again",
                          entry_id=entry_id)


@action("member_adjustment", check=_key_unused)
def adjust(tx, network, params: dict) -> dict:
    return adjust_member(tx, params["member_id"], int(params["points"]), reason=params["reason"],
                         request_key=params.get("request_key"))


@action("member_erasure")
def erase(tx, network, params: dict) -> dict:
    record = erase_member(tx, params["member_id"], keyring=network.keyring, reason=params.get("reason"))
    network.expect_erased_pages()  # before the commit: a process killed after it leaves the job the WAL
    tx.after_commit.append(network.forget_erased_pages)
    return record


# -- search ----------------------------------------------------------------------------------
# What is typed (a phone number, an e-mail address) travels in a POST's body, never in a URL: a URL
# lands in browser history, in nginx's error log (request line and Referer) and in proxies' logs.
# A GET searches by member id only (an opaque id, not personal data), so links by id keep working.

SEARCH_KINDS = ("auto", "phone", "email", "id")
MAX_QUERY = 254  # an e-mail address's longest (RFC 5321's path limit), as the partner API takes it


def _search_kind(query: str, by: str) -> str:
    if by in ("phone", "email", "id"):
        return by
    if "@" in query:
        return "email"
    return "id" if query.startswith("mem_") else "phone"


def _search_page(request: Request, *, q: str = "", by: str = "auto", error: dict | None = None,
                 status_code: int = 200):
    return page(request, "members.html", status_code=status_code, q=q, by=by, error=error)


def _search(request: Request, query: str, by: str):
    """Find one member through the blind index (phone, e-mail) or by id; never by decrypting. A hit
    answers 303 to the member's page (its opaque id); a miss or a refusal, the form again."""
    kind = _search_kind(query, by)
    network = network_of(request)
    keyring = network.keyring

    def unit(tx):
        if kind == "id":  # a member merged into another is found as its survivor, as by phone or e-mail
            record = directory.member_record(tx, query)
            return record["merged_into"] or record["member_id"]
        return find_member(tx, keyring, **{kind: query})

    try:
        found = network.tx(unit, readonly=True)
    except PointsnetError as error:
        found, problem = None, {"code": error.code, "detail": error.detail}
    else:
        problem = None if found else {"code": "unknown_member", "detail": "no member has this " + kind}
    if found:
        return RedirectResponse(f"{request.scope.get('root_path') or ''}/members/{found}", status_code=303)
    return _search_page(request, q=query, by=by, error=problem,
                        status_code=404 if problem["code"] == "unknown_member" else 422)


@router.get("/members")
def members_page(request: Request, q: str = Query("", max_length=MAX_QUERY),
                 by: str = Query("auto", pattern="^(auto|phone|email|id)$"),
                 staff=Depends(require("operator", "finance"))):
    """The search form; a link by member id (``?q=mem_…``) is followed. A phone number or e-mail
    address in the URL is not searched, nor shown again: the form sends it in the body."""
    query = q.strip()
    if not query:
        return _search_page(request, by=by)
    if _search_kind(query, by) != "id" or not query.startswith("mem_"):
        return _search_page(request, by=by, status_code=400, error={
            "code": "search_by_form", "detail": "search by phone number or e-mail with the form, not in the "
                                                "page's address"})
    return _search(request, query, by)


@router.post("/members")
def search_members(request: Request, checked=Depends(checked_form("operator", "finance"))):
    _staff, form = checked
    query, by = str(form.get("q") or "").strip(), str(form.get("by") or "auto")
    if by not in SEARCH_KINDS or len(query) > MAX_QUERY:
        problem = {"code": "validation_failed",
                   "detail": f"search for at most {MAX_QUERY} characters, by one of {', '.join(SEARCH_KINDS)}"}
        return _search_page(request, q=query[:MAX_QUERY], by=by if by in SEARCH_KINDS else "auto",
                            error=problem, status_code=422)
    if not query:
        return _search_page(request, by=by)
    return _search(request, query, by)


# -- the member page -------------------------------------------------------------------------

def _member(request: Request, member_id: str, paged: Paging, *, full: dict | None = None,
            error: dict | None = None, values: dict | None = None, request_key: str | None = None,
            status_code: int = 200):
    """The member's page; a refused form comes back with what was typed into it (``values``) beside its
    error. Its adjustment form carries a fresh request key unless ``request_key`` says otherwise."""
    network = network_of(request)
    keyring = network.keyring

    def unit(tx):
        record = directory.member_record(tx, member_id)
        rows, total = member_movements_page(tx, member_id, offset=paged.offset, limit=paged.limit)
        if record["status"] != "active" or record["merged_into"]:
            return record, None, None, rows, total
        return record, member_summary(tx, member_id), directory.masked_personal_data(tx, keyring, member_id), \
            rows, total

    record, summary, masked, rows, total = network.tx(unit, readonly=True)
    return page(request, "member.html", status_code=status_code, member=record, summary=summary,
                personal=full or masked, full=full is not None,
                # the page answers its own forms too (the unmasked view, a refused adjustment or erasure):
                # its paging links name its own path, the masked page
                movements=page_of(rows, total, paged,
                                  path=(request.scope.get("root_path") or "") + f"/members/{member_id}"),
                request_key=request_key or secrets.token_urlsafe(16), error=error, values=values or {},
                max_reason=MAX_REASON, tab="member",
                message=notice(request.query_params.get("message")))


@router.get("/members/{member_id}")
def member_page(request: Request, member_id: str = MEMBER_ID, paged: Paging = Depends(paging),
                staff=Depends(require("operator", "finance"))):
    return _member(request, member_id, paged)


@router.get("/members/{member_id}/lots")
def lots_page(request: Request, member_id: str = MEMBER_ID, paged: Paging = Depends(paging),
              show: str = Query("open", pattern="^(open|all)$"), staff=Depends(require("operator", "finance"))):
    def unit(tx):
        record = directory.member_record(tx, member_id)
        rows, total = member_lots_page(tx, member_id, offset=paged.offset, limit=paged.limit,
                                       open_only=show == "open")
        # a partner that funds a lot by its name, as the other pages show partners
        names = names_of(tx, [row["funded_by"] for row in rows])
        return record, [row | {"funder_name": names.get(row["funded_by"], row["funded_by"])} for row in rows], total

    record, rows, total = network_of(request).tx(unit, readonly=True)
    return page(request, "member_lots.html", member=record, lots=page_of(rows, total, paged, {"show": show}),
                show=show, tab="lots")


@router.post("/members/{member_id}/personal-data")
def reveal(request: Request, member_id: str = MEMBER_ID, checked=Depends(checked_form("operator"))):
    """Full personal data, for operators only; each view is written to the audit log first."""
    staff, _form = checked
    network = network_of(request)
    keyring = network.keyring

    def unit(tx):
        plain = directory.personal_data(tx, keyring, member_id)
        audit.record(tx, staff, "member.personal_data_viewed", member_id,
                     fields=[name for name, value in plain.items() if value])
        return plain

    full = network.tx(unit)
    return _member(request, member_id, Paging(), full=full)


def _problem(error: PointsnetError) -> dict:
    return {"code": error.code, "detail": error.detail}


def _done(request: Request, member_id: str, done) -> RedirectResponse:
    base = request.scope.get("root_path") or ""
    message = "requested" if done.pending_id else "done"
    return RedirectResponse(f"{base}/members/{member_id}?message={message}", status_code=303)


@router.post("/members/{member_id}/adjustments")
def request_adjustment(request: Request, member_id: str = MEMBER_ID, checked=Depends(checked_form("operator"))):
    staff, form = checked
    network = network_of(request)
    text, reason = str(form.get("points") or "").strip(), str(form.get("reason") or "").strip()
    request_key = str(form.get("request_key") or "").strip()
    try:
        if not is_whole(text, negative=True):  # int() would also read "１２" as 12
            raise InvalidPoints(f"points must be a whole number in the digits 0-9, not {text[:20]!r}")
        if len(text.lstrip("-").lstrip("0")) > len(str(MAX_POINTS)):  # int() refuses past 4,300 digits
            raise InvalidPoints(f"an adjustment is at most {MAX_POINTS} points either way")
        points = int(text)
        if points == 0:
            raise InvalidPoints("an adjustment of 0 points changes nothing")
        if abs(points) > MAX_POINTS:  # refused now rather than queued for a second operator to see fail
            raise InvalidPoints(f"an adjustment is at most {MAX_POINTS} points either way")
        if not reason or len(reason) > MAX_REASON:
            raise ValidationFailed(f"give a reason of 1 to {MAX_REASON} characters")
        # the form's own key makes a form sent twice one request; a key made here would make it two
        if not request_key or len(request_key) > MAX_REQUEST_KEY:
            raise ValidationFailed("the form has no request key: open the member's page again and fill in "
                                   "its form")

        def active(tx):
            if directory.member_record(tx, member_id)["status"] != "active":
                raise UnknownMember(f"member {member_id} was erased")

        network.tx(active, readonly=True)
        done = submit(network, staff, "member_adjustment", member_id,
                      {"member_id": member_id, "points": points, "reason": reason, "request_key": request_key})
    except PointsnetError as error:
        # The form comes back as typed. Refused as a duplicate (the same form sent again), it keeps its
        # own request key, so sending it once more is refused again; otherwise nothing was filed under
        # that key and the form gets a fresh one, as the page always does.
        duplicate = isinstance(error, (AlreadyPending, AlreadyDone))
        return _member(request, member_id, Paging(), error=_problem(error) | {"form": "adjust"},
                       values={"points": text, "reason": reason}, request_key=request_key if duplicate else None,
                       status_code=error.status)
    return _done(request, member_id, done)


@router.post("/members/{member_id}/erasure")
def request_erasure(request: Request, member_id: str = MEMBER_ID, checked=Depends(checked_form("operator"))):
    staff, form = checked
    network = network_of(request)
    typed = str(form.get("reason") or "").strip()
    reason = typed[:MAX_REASON] or None
    try:
        def holds(tx):
            record = directory.member_record(tx, member_id)
            if record["status"] == "erased":  # refused now rather than queued to fail at approval
                raise MemberErased(f"member {member_id} is already erased")
            if record["status"] != "active":
                raise UnknownMember(f"member {member_id} was merged into {record['merged_into']}: erase the survivor")
            return count_open_holds(tx, member_id)

        open_holds = network.tx(holds, readonly=True)
        if open_holds:  # refused now rather than at approval (the action checks again when it runs)
            raise HoldsOpen(f"member {member_id} has {open_holds} open holds; capture or void them first",
                            open_holds=open_holds)
        done = submit(network, staff, "member_erasure", member_id, {"member_id": member_id, "reason": reason})
    except PointsnetError as error:
        return _member(request, member_id, Paging(), error=_problem(error) | {"form": "erase"},
                       values={"reason": typed}, status_code=error.status)
    return _done(request, member_id, done)
