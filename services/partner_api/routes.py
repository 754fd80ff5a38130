"""Partner API v1 endpoints. Thin: the gate has authenticated the partner; the ledger does the rest."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable

import orjson
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from services.partner_api import cursors, schemas
from services.partner_api.exactly_once import execute
from shared.alerts import raise_alert
from shared.db.database import Tx
from shared.errors import IdempotencyKeyReused, InvalidLinkToken, NotFound, PartnerSuspended, PointsnetError
from shared.ledger import idempotency
from shared.ledger.events import Event
from shared.ledger.posting import post_events, quote_earn
from shared.ledger.queries import entries_after, member_balance, other_writers, partner_entries_page
from shared.programme.tiers import current_tier
from shared.members import consent, enrolment
from shared.members.privacy import Keyring
from shared.models import Entry, Partner, Settlement, SettlementRun, Transfer
from shared.rules.evaluate import PurchaseItem
from shared.network import Network
from shared.partners.lifecycle import PartnerTerminated
from shared.clock import parse_date
from shared.settlement.files import statement_name
from shared.settlement.finance import amounts, paid_sums
from shared.settlement.reconcile import UnverifiedStatement, verified_statement
from shared.settlement.runs import of_the_network, partner_statements, run_directory
from shared.signing import jwk, network_key_id
from shared.signing_keys import KnownKey, known_keys, public_keys
from shared.transparency import checkpoints
from shared.transparency.checkpoints import checkpoint_json

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
DOOR = ("signature_missing", "signature_malformed", "signature_tag_invalid", "signature_alg_invalid",
        "signature_component_missing", "signature_expired", "key_unknown", "key_revoked", "signature_invalid",
        "digest_mismatch", "nonce_reused", "partner_suspended", "partner_terminated", "rate_limited", "body_too_large",
        "validation_failed")
KEYED = ("idempotency_key_missing", "idempotency_key_invalid")  # the door's, on every POST
WRITE = KEYED + ("idempotency_key_reused", "request_in_progress")  # a write kept for its key
BODY = ("malformed_request",)  # a JSON body that does not parse (services/partner_api/app.py)


def _all_errors() -> dict[str, int]:
    import services.partner_api.errors  # noqa: F401  (register the door's errors)

    found, todo = {}, [PointsnetError]
    while todo:
        cls = todo.pop()
        found[cls.code] = cls.status
        todo.extend(cls.__subclasses__())
    return found


def problems(*codes: str, write: bool = False, body: bool | None = None, kept: bool = True) -> dict:
    """OpenAPI responses listing every problem code a route can answer, grouped by status. ``write``: a
    POST (Idempotency-Key); ``kept``: its answer is kept for the key (false for a quote, which the door
    asks a key of but which nothing stores); ``body``: it reads a JSON body (by default, as a POST does)."""
    codes_by_name = _all_errors()
    by_status: dict[int, list[str]] = {}
    for code in DOOR + ((WRITE if kept else KEYED) if write else ()) + (BODY if (write if body is None else body)
                                                                        else ()) + codes:
        by_status.setdefault(codes_by_name[code], []).append(code)
    return {status: {"model": schemas.Problem,
                     "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                     "description": "Problem details; `code` is one of: " + ", ".join(f"`{c}`" for c in found),
                     **({"headers": {"Retry-After": retry_after()}} if RETRIED.intersection(found) else {})}
            for status, found in sorted(by_status.items())}


# the problems answered with a Retry-After header (shared/errors.py retry_after; the door's rate limit)
RETRIED = {"rate_limited", "request_in_progress"}


def retry_after() -> dict:
    return {"description": "Seconds to wait before sending the request again (`rate_limited`, `request_in_progress`)",
            "schema": {"type": "integer"}}


router = APIRouter(prefix="/v1")
RESULT_FIELDS = set(schemas.LedgerResult.model_fields)


class UnknownStatement(NotFound):
    code, title = "statement_not_found", "No such statement"


class StatementUnavailable(PointsnetError):
    """A settled statement whose file the network's host does not have now (its settlement directory lost,
    until the operators write it again with ``pointsnet clearing run --cycle D``): not "no such statement"."""
    status, code, title = 503, "statement_unavailable", "The network cannot serve this statement now"


def _network(request: Request) -> Network:
    return request.app.state.network


def _partner(request: Request) -> str:
    return request.state.partner_id


# what a partner may post for a member it is no longer linked to: a reversal of its own entry, a capture
# or void of its own hold (shared/members/consent.py); any other write needs the link
WITHOUT_LINK = ("reversal", "capture", "void")


def api_result(result: dict, unseen: set[str] = frozenset()) -> dict:
    """A posting's result as the API answers it. ``unseen``: members the partner is not linked to (see
    ``_unseen``), whom it may not see: ``member_id`` and ``balance`` null, as ``GET /v1/transactions``
    shows its entries for them (after a merge the id would be another partner's member)."""
    body = {("transaction_id" if key == "entry_id" else key): value for key, value in result.items()}
    if body.get("member_id") in unseen:
        body["member_id"] = body["balance"] = None
    return {key: value for key, value in body.items() if key in RESULT_FIELDS}


def _unseen(tx: Tx, partner_id: str, outcomes: list) -> set[str]:
    """The members of the results (of a kind that needs no link) the partner is not linked to: one query,
    none for earns, burns and holds, which it posts only for members linked to it."""
    members = {o["member_id"] for o in outcomes if isinstance(o, dict) and o.get("kind") in WITHOUT_LINK
               and o.get("member_id")}
    return members - _linked_members(tx, partner_id, members)


class FastJSONResponse(JSONResponse):
    """The same JSON as Starlette's ``JSONResponse``, written by orjson (a batch answer holds 10,000 results),
    with sorted keys: the answer kept for an Idempotency-Key is stored with sorted keys, so a replay is
    the first answer byte for byte (and so is its Content-Digest)."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an integer beyond 64 bits: the standard library copes
            return json.dumps(content, sort_keys=True, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode()


def _items(lines: list[schemas.Item] | None) -> tuple[PurchaseItem, ...] | None:
    return tuple(PurchaseItem(i.sku, i.category, i.amount, i.quantity) for i in lines) if lines else None


def _respond(status: int, body: Any, replayed: bool) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return FastJSONResponse(body, status_code=status, headers=headers,
                            media_type=PROBLEM if status >= 400 else "application/json")


def _exactly_once(request: Request, payload: Any, operation: Callable[[Tx], tuple[int, Any]]) -> JSONResponse:
    network = _network(request)
    fingerprint = {"method": request.method, "path": request.url.path,
                   "body": payload.model_dump(mode="json") if hasattr(payload, "model_dump") else payload}
    return _respond(*execute(network, _partner(request), request.state.idempotency_key, fingerprint, operation))


def _post_event(request: Request, payload: Any, event: Event) -> JSONResponse:
    partner_id = _partner(request)

    def operation(tx: Tx) -> tuple[int, dict]:
        [outcome] = post_events(tx, partner_id, [event])
        if isinstance(outcome, PointsnetError):
            raise outcome
        return 200, api_result(outcome, _unseen(tx, partner_id, [outcome]))

    return _exactly_once(request, payload, operation)


# -- members ---------------------------------------------------------------------------------

@router.post("/members", status_code=201, response_model=schemas.MemberEnrolled,
             responses={200: {"model": schemas.MemberEnrolled, "description": "Existing member linked"},
                        **problems("consent_required", "invalid_link_token", "invalid_contact", "unknown_member",
                                   "customer_ref_taken", "customer_ref_mismatch", "contact_conflict", write=True)})
def enrol_member(request: Request, body: schemas.EnrolRequest):
    """Enrol a new member, or link an existing one with its `link_token` (the member's consent).

    A phone or email already enrolled elsewhere, without a token: 409 `consent_required`. A phone of one
    member with the email of another: 409 `contact_conflict`.
    """
    network, partner_id = _network(request), _partner(request)
    keyring = network.keyring

    def operation(tx: Tx) -> tuple[int, dict]:
        outcome = enrolment.enrol(tx, keyring, partner_id, **body.model_dump())
        # as a spend now would find it, as GET /v1/members/{id} shows it (only what is due is read: horizon now)
        now = member_balance(tx, outcome["member_id"], expiring_within_days=0, apply_due=True)
        return (201 if outcome["created"] else 200), {**outcome, "balance": {"available": now["available"],
                                                                            "held": now["held"]}}

    region = network.settings.default_region
    first = _without_personal_data(keyring, keyring.active.id, body, region)
    try:
        return _exactly_once(request, first, operation)
    except IdempotencyKeyReused as refused:
        # Kept under an earlier active key (before a rotation, or by a process not on phase 2 yet)? Then
        # the same body is compared under that key, while the keyring holds it (`keys retire` waits).
        # Kept before contacts were hashed in their normalised form? Then as typed (`as_typed`).
        kept = _kept_under(network, partner_id, request)
        if kept is None:
            raise
        if kept not in keyring.keys:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {request.state.idempotency_key!r} was first used for an enrolment kept under a "
                "personal-data key since retired, so it can no longer be compared; enrol with a new "
                "Idempotency-Key (a person already enrolled and linked to you is answered with its member)",
                differs=[]) from None
        tried, closest = [first], refused
        for as_typed in (False, True):
            fingerprint = _without_personal_data(keyring, kept, body, region, as_typed=as_typed)
            if fingerprint in tried:
                continue
            tried.append(fingerprint)
            try:
                return _exactly_once(request, fingerprint, operation)
            except IdempotencyKeyReused as again:  # the refusal naming the fewest differences is the one answered
                if len(again.extra.get("differs", [])) < len(closest.extra.get("differs", [])):
                    closest = again
        raise closest from None


def _without_personal_data(keyring: Keyring, key_id: str, body: schemas.EnrolRequest, region: str, *,
                           as_typed: bool = False) -> dict:
    """The enrolment as the idempotency record keeps it: contact fields only as keyed hashes under the
    personal-data key ``key_id`` (``<key id>:<hex>``), never in clear. A phone or email is hashed in its
    normalised form (E.164, the folded address), as the member's blind index holds it, so that an erasure
    finds every enrolment record of the person, refused ones too (shared/members/erasure.py); as typed
    if it cannot be read (a link-token enrolment does not read it), or with ``as_typed``: how records
    were kept before (a retry of one is compared so)."""
    fingerprint = body.model_dump(mode="json")
    for field in enrolment.REQUEST_HASHED:  # a token not used may still work
        value = fingerprint.get(field)
        if value is not None:
            if not as_typed and value:
                value = enrolment.normalised_contact(field, value, region)
            fingerprint[field] = keyring.index_under(key_id, f"request.{field}", value)
    return fingerprint


def _kept_under(network: Network, partner_id: str, request: Request) -> str | None:
    """The personal-data key the enrolment kept for this request's Idempotency-Key was hashed under."""
    def read(tx: Tx) -> str | None:
        stored = tx.session.execute(idempotency.LOOKUP, {"partner_id": partner_id,
                                                         "key": request.state.idempotency_key}).first()
        kept = json.loads(stored.request) if stored is not None else None
        if not isinstance(kept, dict) or (kept.get("method"), kept.get("path")) != (request.method, request.url.path):
            return None
        return enrolment.request_key_id(kept)

    return network.tx(read, readonly=True)


@router.post("/members/{member_id}/link-tokens", status_code=201, response_model=schemas.LinkToken,
             responses=problems("unknown_member", "member_erased", "invalid_link_token", write=True, body=False))
def mint_link_token(request: Request, member_id: str):
    """Mint a short-lived, single-use token for a linked member to show another partner (QR code).

    A retry with the same Idempotency-Key answers the same token; the answer kept for it holds the
    token sealed with the members' data key, as contact details are (the token works until used or
    expired, and the database otherwise keeps only its hash). `pointsnet keys retire` keeps that key
    while such answers are within their retention; should it be gone anyway, the retry answers 409
    `invalid_link_token` (mint another with a new Idempotency-Key), never an error of the server."""
    network, partner_id = _network(request), _partner(request)

    def operation(tx: Tx) -> tuple[int, dict]:
        answer = enrolment.mint_link_token(tx, partner_id, member_id)
        return 201, {**answer, "link_token": network.keyring.encrypt("link_token", member_id, answer["link_token"])}

    status, body, replayed = execute(network, partner_id, request.state.idempotency_key, {
        "method": request.method, "path": request.url.path, "body": None}, operation)
    if status == 201 and body["link_token"].startswith("v1."):  # (an answer kept before it was sealed: as it is)
        keyring = network.keyring
        if body["link_token"].split(".", 2)[1] not in keyring.keys:
            raise InvalidLinkToken("the link token kept for this Idempotency-Key was sealed under a personal-data "
                                   "key since retired and cannot be shown again; mint another with a new "
                                   "Idempotency-Key")
        body = {**body, "link_token": keyring.decrypt("link_token", member_id, body["link_token"])}
    return _respond(status, body, replayed)


@router.post("/members/{member_id}/unlink", response_model=schemas.MemberUnlinked,
             responses=problems("unknown_member", "member_erased", "holds_open", write=True, body=False))
def unlink_member(request: Request, member_id: str):
    """The member withdraws its consent from you (it closes its account with you): your link to it goes.

    A write as every other: a POST with an Idempotency-Key, its answer kept and replayed to a retry. From
    then on the member is one you cannot see (404 `unknown_member`), your customer_ref of it and your unused
    link tokens for it are gone; its points and history stay the network's. Linking it again needs its
    consent again (a link token). Refused with 409 `holds_open` while you hold an open hold for it."""
    partner_id = _partner(request)

    def operation(tx: Tx) -> tuple[int, dict]:
        consent.unlink(tx, partner_id, member_id, requested_by="partner")
        return 200, {"member_id": member_id, "linked": False}

    return _exactly_once(request, None, operation)


@router.get("/members/{member_id}", response_model=schemas.MemberView, responses=problems("unknown_member"))
def get_member(request: Request, member_id: str):
    """Balance, held points, tier and points expiring in the next 30 days (linked members only), as at
    this instant: a hold past its timeout counts as released and points past their expiry as expired,
    as a burn now would find them, even before the network's jobs have recorded it."""
    partner_id = _partner(request)

    def read(tx: Tx) -> dict:
        enrolment.require_linked(tx, partner_id, member_id)
        view = member_balance(tx, member_id, apply_due=True)  # as a spend now would find it
        return {"member_id": member_id, "balance": {"available": view["available"], "held": view["held"]},
                "held": view["held"], "tier": current_tier(tx, member_id), "expiring_soon": view["expiring_soon"]}

    return _network(request).tx(read, readonly=True)


def _cursors(request: Request) -> bytes:
    """The key the lists' cursors are authenticated with (services/partner_api/cursors.py)."""
    return cursors.cursor_key(_network(request).signing_key)


def _history_cursor(key: bytes, listing: tuple[str, ...], value: str | None) -> tuple[datetime, str] | None:
    if not value:
        return None
    position = cursors.take(key, listing, value)
    try:
        posted_at, entry_id = position
        at = datetime.fromisoformat(posted_at)
    except (TypeError, ValueError) as exc:
        raise cursors.refused() from exc
    if at.tzinfo is None or not isinstance(entry_id, str):  # this API's cursors carry UTC instants
        raise cursors.refused()
    return at, entry_id


def _next_history_cursor(key: bytes, listing: tuple[str, ...], rows: list, limit: int) -> str | None:
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return cursors.give(key, listing, [last.posted_at.isoformat(), last.id])


@router.get("/members/{member_id}/history", response_model=schemas.History, responses=problems("unknown_member"))
def member_history(request: Request, member_id: str, cursor: str | None = Query(None),
                   limit: int = Query(50, ge=1, le=500)):
    """The member's points movements across the network, newest first (no other partners' purchase details)."""
    partner_id, key = _partner(request), _cursors(request)
    listing = ("history", partner_id, member_id)
    position = _history_cursor(key, listing, cursor)

    def read(tx: Tx) -> dict:
        enrolment.require_linked(tx, partner_id, member_id)
        account, held = f"member:{member_id}", f"member:{member_id}:held"
        rows = tx.session.execute(
            select(Entry.id, Entry.kind, Entry.points, Entry.posted_at, Partner.name)
            .outerjoin(Partner, Partner.id == Entry.partner_id)
            .where(Entry.member_id == member_id, entries_after(position, descending=True))
            .order_by(Entry.posted_at.desc(), Entry.id.desc()).limit(limit + 1)).all()
        ids = [row.id for row in rows[:limit]]
        changes: dict[tuple[str, str], int] = {}
        if ids:
            for entry_id, debit, credit, points in tx.session.execute(
                    select(Transfer.entry_id, Transfer.debit_account, Transfer.credit_account, Transfer.points)
                    .where(Transfer.entry_id.in_(ids))):
                for name, sign in ((credit, 1), (debit, -1)):
                    changes[(entry_id, name)] = changes.get((entry_id, name), 0) + sign * points
        return {"member_id": member_id, "next_cursor": _next_history_cursor(key, listing, rows, limit), "movements": [
            {"transaction_id": row.id, "kind": row.kind, "points": row.points, "posted_at": row.posted_at,
             "available_change": changes.get((row.id, account), 0), "held_change": changes.get((row.id, held), 0),
             "partner": row.name} for row in rows[:limit]]}

    return _network(request).tx(read, readonly=True)


# -- earning and spending --------------------------------------------------------------------

@router.post("/earn", response_model=schemas.LedgerResult, responses=problems(
    "unknown_member", "member_erased", "invalid_points", "invalid_amount", "nothing_to_earn", "occurred_at_out_of_range",
    "velocity_limit_exceeded", "float_exhausted", "reference_conflict", "cycle_closed", write=True))
def earn(request: Request, body: schemas.EarnRequest):
    """Award points for a purchase: explicit `points`, or computed from `amount` by the earn rules."""
    return _post_event(request, body, _earn_event(body))


@router.post("/earn/quote", response_model=schemas.Quote, responses=problems(
    "unknown_member", "member_erased", "invalid_points", "invalid_amount", "nothing_to_earn", "occurred_at_out_of_range",
    "velocity_limit_exceeded", "float_exhausted", "reference_conflict", write=True, kept=False))
def earn_quote(request: Request, body: schemas.EarnRequest):
    """Compute the points an earn with this body would award, without posting anything.

    A `reference` you already used for other content is 409 `reference_conflict`, as the earn is; one
    already used for this very earn answers what that earn awarded (the earn answers it again)."""
    partner_id = _partner(request)
    return _network(request).tx(lambda tx: quote_earn(tx, partner_id, _earn_event(body)))


def _earn_event(body: schemas.EarnRequest) -> Event:
    items = _items(body.items)
    return Event("earn", body.reference, body.member_id, body.points, body.amount, body.currency, body.occurred_at,
                 items=items)


@router.post("/activities", response_model=schemas.LedgerResult, responses=problems(
    "unknown_member", "member_erased", "unknown_activity", "invalid_amount", "activity_cap_reached",
    "velocity_limit_exceeded", "occurred_at_out_of_range", "reference_conflict", "cycle_closed", write=True))
def activity(request: Request, body: schemas.ActivityRequest):
    """Award the points of one of your activities (sign-up, survey, check-in, ...) from your earn rules."""
    return _post_event(request, body, Event("activity", body.reference, body.member_id,
                                            occurred_at=body.occurred_at, activity=body.activity))


@router.post("/burn", response_model=schemas.LedgerResult, responses=problems(
    "unknown_member", "member_erased", "insufficient_points", "invalid_amount", "velocity_limit_exceeded",
    "occurred_at_out_of_range", "reference_conflict", "cycle_closed", write=True))
def burn(request: Request, body: schemas.BurnRequest):
    """Spend points (earliest-expiring first)."""
    return _post_event(request, body, Event("burn", body.reference, body.member_id, body.points,
                                            occurred_at=body.occurred_at))


@router.post("/holds", response_model=schemas.LedgerResult, responses=problems(
    "unknown_member", "member_erased", "insufficient_points", "invalid_amount", "velocity_limit_exceeded",
    "occurred_at_out_of_range", "reference_conflict", "cycle_closed", write=True))
def hold(request: Request, body: schemas.HoldRequest):
    """Reserve points for a two-phase redemption; capture or void it before it times out."""
    return _post_event(request, body, Event("hold", body.reference, body.member_id, body.points,
                                            occurred_at=body.occurred_at))


@router.post("/holds/{hold_id}/capture", response_model=schemas.LedgerResult, responses=problems(
    "unknown_hold", "hold_not_open", "capture_exceeds_hold", "invalid_amount", "reference_conflict", "cycle_closed",
    write=True))
def capture(request: Request, hold_id: str,
            body: schemas.CaptureRequest = Body(default_factory=schemas.CaptureRequest)):  # no body: {}
    """Spend up to the held points; the rest returns to the member."""
    return _post_event(request, body, Event("capture", body.reference, points=body.points, hold_id=hold_id))


@router.post("/holds/{hold_id}/void", response_model=schemas.LedgerResult, responses=problems(
    "unknown_hold", "hold_not_open", "reference_conflict", "cycle_closed", write=True))
def void(request: Request, hold_id: str,
         body: schemas.VoidRequest = Body(default_factory=schemas.VoidRequest)):  # no body: {}
    """Release a hold entirely."""
    return _post_event(request, body, Event("void", body.reference, hold_id=hold_id))


@router.post("/reversals", response_model=schemas.LedgerResult, responses=problems(
    "unknown_reference", "member_erased", "not_reversible", "points_already_spent", "reversal_exceeds_remaining",
    "reference_conflict", "cycle_closed", write=True))
def reversal(request: Request, body: schemas.ReversalRequest):
    """Reverse an earn, burn or capture of yours, fully or partly, by its reference."""
    return _post_event(request, body, Event("reversal", body.reference, points=body.points,
                                            original_reference=body.original_reference))


@router.post("/batch", response_model=schemas.BatchResult, responses=problems("batch_too_large", "cycle_closed",
                                                                             write=True))
def batch(request: Request, body: schemas.BatchRequest):
    """Up to 10,000 earn/burn/reversal events; one result per event, in order, each exactly once by reference."""
    partner_id = _partner(request)
    events = [Event(e.type, e.reference, e.member_id, e.points, e.amount, e.currency, e.occurred_at,
                    e.original_reference, items=_items(e.items)) for e in body.events]

    def operation(tx: Tx) -> tuple[int, dict]:
        outcomes = post_events(tx, partner_id, events)
        left = next((o for o in outcomes if isinstance(o, (PartnerSuspended, PartnerTerminated))), None)
        if left is not None:  # suspended or gone since the door: the whole batch is refused, as any POST then
            raise left  # (every event of it was refused, so nothing was written; a 403 is not kept for the key)
        results, unseen = [], _unseen(tx, partner_id, outcomes)
        for index, (event, outcome) in enumerate(zip(events, outcomes)):
            if isinstance(outcome, PointsnetError):
                results.append({"index": index, "reference": event.reference, "status": outcome.status,
                                "problem": outcome.to_problem()})
            else:
                results.append({"index": index, "reference": event.reference, "status": 200,
                                "result": api_result(outcome, unseen)})
        accepted = sum(r["status"] == 200 for r in results)
        return 200, {"accepted": accepted, "refused": len(results) - accepted, "results": results}

    return _exactly_once(request, body, operation)


# -- reading ---------------------------------------------------------------------------------

@router.get("/transactions", response_model=schemas.Transactions, responses=problems())
def transactions(request: Request, cursor: str | None = Query(None), limit: int = Query(100, ge=1, le=1000)):
    """Your own ledger entries, in the order the ledger wrote them (oldest first), cursor-paginated: an
    entry committing after a page never falls behind its cursor."""
    partner_id, key = _partner(request), _cursors(request)
    listing = ("transactions", partner_id)
    position = _transactions_cursor(key, listing, cursor)

    network = _network(request)
    not_ours = network.tx(other_writers, readonly=True)  # before the listing's snapshot: see other_writers

    def read(tx: Tx) -> dict:
        rows = partner_entries_page(tx, partner_id, position, limit + 1, not_ours)
        after = cursors.give(key, listing, [rows[limit - 1].xid, rows[limit - 1].id]) if len(rows) > limit else None
        linked = _linked_members(tx, partner_id, {r.member_id for r in rows[:limit] if r.member_id})
        return {"next_cursor": after, "transactions": [
            {"transaction_id": r.id, "kind": r.kind, "reference": r.reference,
             "member_id": r.member_id if r.member_id in linked else None,
             "points": r.points, "posted_at": r.posted_at, "cycle_date": r.cycle_date,
             "original_transaction_id": r.original_entry_id, "hold_id": r.hold_id} for r in rows[:limit]]}

    return network.tx(read, readonly=True)


def _linked_members(tx: Tx, partner_id: str, member_ids: set[str]) -> set[str]:
    """Which of a page's members the partner is linked to, in one query: an entry of its own may be
    another member's (a referral bonus it pays a referrer linked elsewhere), whose id it is not shown.
    A duplicate merged into another member counts as linked through the survivor, which holds its links."""
    return consent.linked_members(tx, partner_id, member_ids)


def _transactions_cursor(key: bytes, listing: tuple[str, ...], value: str | None) -> tuple[int, str] | None:
    if not value:
        return None
    position = cursors.take(key, listing, value)
    if not (isinstance(position, list) and len(position) == 2 and type(position[0]) is int
            and isinstance(position[1], str)):
        raise cursors.refused()
    return position[0], position[1]


def _statement_file(request: Request, cycle: str) -> tuple[dict, bytes]:
    """The partner's settlement of the cycle and its statement file, only as the network signed it: the
    file's SHA-256 the one the cycle's manifest lists, the manifest's signature the network's (a current or
    retired key) and the manifest the one the cycle's run wrote (settlement_runs.manifest_sha256). A file
    edited or replaced since is never served: 503 statement_unavailable, an error logged and an operator
    alert (``statement_unverified``), as for a lost file. Three files are read (manifest, signature,
    statement), never the whole directory."""
    partner_id = _partner(request)
    try:
        day = parse_date(cycle)  # exactly YYYY-MM-DD: one cycle has one name
    except ValueError:
        raise UnknownStatement(f"no statement for cycle {cycle!r}") from None
    network = _network(request)
    current = network.signing_key.public_key()

    def read(tx: Tx):
        found = tx.session.execute(select(Settlement, SettlementRun.manifest_sha256).join(
            SettlementRun, SettlementRun.cycle_date == Settlement.cycle_date).where(
            Settlement.cycle_date == day, Settlement.party == partner_id,
            of_the_network(Settlement.cycle_date))).one_or_none()  # none before the first cycle, as the list
        if found is None:
            return None
        paid = paid_sums(tx, Settlement.cycle_date == day, Settlement.party == partner_id).get((day, partner_id), 0)
        # under the data directory in force now; every key the manifest may be signed with (current, retired)
        return found[0], paid, found[1], run_directory(tx, day), public_keys(tx, current)

    found = network.tx(read, readonly=True)
    if found is None:
        raise UnknownStatement(f"no settled statement for you in cycle {cycle}")
    settlement, paid, manifest_sha256, directory, keys = found
    directory = Path(directory)
    # settled, the file lost: the operators write it again; the cycle is listed
    if not (directory / statement_name(partner_id)).exists():
        _unverified_statement(network, partner_id, day, directory, FileNotFoundError(
            2, "the statement file is missing", str(directory / statement_name(partner_id))))
        raise StatementUnavailable(f"cycle {cycle} is settled, but its statement file is not available now; "
                                   "the network's operators are told by `pointsnet verify`: ask again later")
    try:
        content = verified_statement(directory, partner_id, keys, manifest_sha256=manifest_sha256)
    except (UnverifiedStatement, OSError) as exc:
        _unverified_statement(network, partner_id, day, directory, exc)
        raise StatementUnavailable(f"cycle {cycle} is settled, but its statement file does not match the network's "
                                   "signed record of it now, so it is not served; the network's operators are "
                                   "told: ask again later") from None
    return _settlement_json(settlement, paid), content


def _unverified_statement(network: Network, partner_id: str, day: date, directory: Path, exc: Exception) -> None:
    """Tell the operators that a statement was not served, it failing its check against the signed manifest
    (or a file unreadable): an error in the log and an operator alert, one open row per partner and day."""
    finding = getattr(exc, "finding", None)
    problem = (f"{finding.check}: {finding.subject}: {finding.detail}" if finding is not None
               else f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}")
    log.error("the statement of %s for cycle %s is not served: %s; check the cycle's directory (%s) with "
              "`pointsnet reconcile DIR` and restore it from a backup of the data directory",
              partner_id, day.isoformat(), problem, directory)
    try:
        network.tx(lambda tx: raise_alert(tx, "statement_unverified", partner_id=partner_id,
                                          cycle_date=day.isoformat(), problem=problem),
                   readonly=True)  # the alert is written in its own unit once this one ends
    except SQLAlchemyError as alert_failed:  # the partner is answered all the same; the error above stands
        log.warning("the alert about the statement of %s for cycle %s was not recorded (%s)",
                    partner_id, day.isoformat(), type(alert_failed).__name__)


def _settlement_json(row: Settlement, paid: int) -> dict:
    """A statement's summary; ``paid``: the payments recorded so far of a settlement still due (finance.paid_sums)."""
    return {"cycle_date": row.cycle_date.isoformat(), "net_minor": row.net_minor,
            "from_float_minor": row.from_float_minor, "by_bank_minor": row.by_bank_minor,
            "payment_date": row.payment_date.isoformat(), "status": row.status} \
        | amounts(row.status, row.by_bank_minor, paid)  # paid_minor, outstanding_minor: as `clearing list --json`


def _cycle_cursor(key: bytes, listing: tuple[str, ...], value: str | None) -> date | None:
    if not value:
        return None
    position = cursors.take(key, listing, value)
    try:
        return date.fromisoformat(position)
    except (TypeError, ValueError) as exc:
        raise cursors.refused() from exc


@router.get("/statements", response_model=schemas.Statements, responses=problems())
def statements(request: Request, cursor: str | None = Query(None), limit: int = Query(100, ge=1, le=1000)):
    """Your settlement statements, one per settled cycle you took part in, newest first, cursor-paginated."""
    partner_id, key = _partner(request), _cursors(request)
    listing = ("statements", partner_id)
    before = _cycle_cursor(key, listing, cursor)

    def read(tx: Tx):
        rows = partner_statements(tx, partner_id, before, limit + 1)
        cycles = [row.cycle_date for row in rows[:limit]]
        return rows, paid_sums(tx, Settlement.party == partner_id, Settlement.cycle_date.in_(cycles)) if cycles else {}

    rows, paid = _network(request).tx(read, readonly=True)
    after = cursors.give(key, listing, rows[limit - 1].cycle_date.isoformat()) if len(rows) > limit else None
    return {"statements": [_settlement_json(row, paid.get((row.cycle_date, partner_id), 0)) for row in rows[:limit]],
            "next_cursor": after}


@router.get("/statements/{cycle}", response_model=schemas.Statement, responses=problems("statement_not_found", "statement_unavailable"))
def statement(request: Request, cycle: str):
    """One cycle's settlement for you, with its statement file (CSV, see docs/settlement-files.md)."""
    summary, content = _statement_file(request, cycle)
    # the bytes verified against the signed manifest: their SHA-256 is the one it lists
    return {**summary, "statement_sha256": hashlib.sha256(content).hexdigest(), "statement_csv": content.decode()}


@router.get("/statements/{cycle}/statement.csv", response_class=PlainTextResponse,
            responses={200: {"content": {"text/csv": {}}}, **problems("statement_not_found", "statement_unavailable")})
def statement_csv(request: Request, cycle: str):
    """The statement file itself, as finance downloads it."""
    _, content = _statement_file(request, cycle)
    return PlainTextResponse(content, media_type="text/csv; charset=utf-8")


KEYS_CACHE_S = 60.0  # the keys rotations recorded are read at most this often per process (a rotation reaches
# every host's /v1/network/keys within it)


class _RecordedKeys:
    """The keys rotations recorded, as this process last read them from the database. When the database
    cannot be read, the keys read before (none: this host's own key alone is served) and a warning, once
    until it can again; it is tried again KEYS_CACHE_S later. The keys are public and answer every client's
    first call: a database outage must not stop clients from starting."""

    def __init__(self) -> None:
        self.keys: list[KnownKey] | None = None
        self.read_at = 0.0
        self.warned = False

    def get(self, network: Network) -> list[KnownKey]:
        now = time.monotonic()
        if self.keys is not None and now - self.read_at < KEYS_CACHE_S:
            return self.keys
        try:
            keys = network.tx(known_keys, readonly=True)
        except SQLAlchemyError as exc:
            if not self.warned:
                self.warned = True
                log.warning("GET /v1/network/keys: the database cannot be read (%s); serving %s until it can",
                            type(exc).__name__, "the keys read before" if self.keys else "this host's own key only")
            self.keys, self.read_at = self.keys or [], now
            return self.keys
        self.keys, self.read_at, self.warned = keys, now, False
        return keys


@router.get("/network/keys", response_model=schemas.NetworkKeys)
def network_keys(request: Request):
    """The network's public keys (JWK), to verify response signatures. May be called unsigned.

    First the key this host signs with; then every other key a rotation recorded (`pointsnet keys
    rotate-signing`): the network's new key, on a host not given it yet, and each retired key, marked
    ``"status": "retired"`` with its ``retired_at``, to check what it signed (checkpoints, manifests).
    The recorded keys are read at most once per KEYS_CACHE_S; with the database down, this host's key."""
    network = _network(request)
    key = network.signing_key
    own = network_key_id(key)
    state = request.app.state
    if getattr(state, "recorded_keys", None) is None:
        state.recorded_keys = _RecordedKeys()
    recorded = state.recorded_keys.get(network)
    mark = {k.key_id: k.retired_at for k in recorded}

    def served(public, kid: str) -> dict:
        when = mark.get(kid)
        return jwk(public, kid) | ({"status": "retired", "retired_at": _instant(when)} if when else {})

    return {"keys": [served(key.public_key(), own), *(served(k.key, k.key_id) for k in recorded if k.key_id != own)]}


def _instant(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")




# -- the tamper-evident ledger (docs/verifiable-ledger.md) -------------------------------------

@router.get("/checkpoints/latest", response_model=schemas.CheckpointView, responses=problems("checkpoint_not_found"))
def latest_checkpoint(request: Request):
    """The newest signed checkpoint of the ledger's Merkle tree (a C2SP signed note; one at least every
    minute). May be called unsigned: the note carries the network's own signature."""
    return _network(request).tx(lambda tx: checkpoint_json(checkpoints.latest(tx)), readonly=True)


@router.get("/checkpoints/consistency", response_model=schemas.ConsistencyProof, response_model_by_alias=True,
            responses=problems("invalid_tree_sizes", "proof_unavailable"))
def checkpoint_consistency(request: Request, from_size: int = Query(alias="from"), to_size: int = Query(alias="to")):
    """RFC 9162 consistency proof that the tree of `to` leaves extends the tree of `from` leaves; both
    must be sizes of signed checkpoints."""
    return _network(request).tx(lambda tx: checkpoints.consistency_proof(tx, from_size, to_size), readonly=True)


@router.get("/transactions/{transaction_id}/proof", response_model=schemas.InclusionProof,
            responses=problems("transaction_not_found", "transaction_not_sealed", "checkpoint_not_found",
                               "proof_unavailable"))
def transaction_proof(request: Request, transaction_id: str):
    """Inclusion proof of one of your own transactions in the latest signed checkpoint, with the
    transaction's canonical encoding so you can recompute its leaf. Another partner's: 404."""
    partner_id = _partner(request)
    return _network(request).tx(lambda tx: checkpoints.inclusion_proof(tx, partner_id, transaction_id),
                                readonly=True)
