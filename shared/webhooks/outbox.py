"""The transactional outbox: webhook events queued in the same transaction as what they report.

``emit`` is the one way to queue an event. The ledger calls ``record_ledger_entries``
when its journal flushes (operators' adjustments among its entries), settlement calls
``record_settlement_ready``; other modules (points.expiring reminders, tier changes, member
status, member merges, member erasures, consent withdrawn) call ``emit`` directly:

    from shared.webhooks import emit
    emit(tx, "tier.changed", {"member_id": m, "from": "silver", "to": "gold"})   # every linked partner
    emit(tx, "points.expiring", {"member_id": m, "points": 300, "expires_at": "..."}, partner_ids=[p])

Who receives what: an event whose ``data`` names a ``member_id`` goes only to partners linked
to that member (``member_links``), whatever the caller asks; a ledger event goes to the partner
that posted it, or, when that partner is not linked to the member (a referral bonus earned where
the referred friend bought), to every partner linked to the member. An event without a member
goes only to the partners named. Partners without an active endpoint get nothing, and a terminated
partner gets no event about a member (only ``settlement.ready``). Payloads carry opaque ids, never
personal data.

A delivery still pending when what it tells may no longer reach its partner is ``cancelled``, never
sent (``cancel_naming``, ``cancel_member_events``): the member withdrew its consent from the partner
(shared/members/consent.py), the member was erased (shared/members/erasure.py), the partner was
terminated (shared/partners/lifecycle.py). The delivery job checks each batch it claims by the same
rule a replay follows (shared/webhooks/delivery.py, ``refusals``), and cancels what an event committed at
the same moment queued. One a worker is sending at that moment may still arrive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import insert, or_, select, update

from shared.db.database import Tx
from shared.db.lists import among_bound, among_rows, bound_list, per_dialect
from shared.db.types import new_id
from shared.ledger.rules import NETWORK
from shared.models import Entry, Member, MemberLink, Termination, WebhookDelivery, WebhookEndpoint
from shared.webhooks.errors import UnknownEventType

EVENT_TYPES = frozenset({
    "points.earned", "points.redeemed", "points.reversed", "points.expired", "points.adjusted", "settlement.ready",
    # queued by features built elsewhere, through emit():
    "points.expiring", "tier.changed", "member.status_changed", "member.merged", "member.erased",
    "member.unlinked",
})
CHUNK = 1000
deliveries_t, members_t = WebhookDelivery.__table__, Member.__table__


class Outgoing(NamedTuple):
    """One event to queue. ``partner_ids=None``: every partner linked to ``data['member_id']``.
    ``or_linked``: when none of ``partner_ids`` is linked to the member (a referral bonus posted by
    the partner where the referred friend bought), every partner linked to it instead."""

    event_type: str
    data: dict
    partner_ids: tuple[str, ...] | None = None
    or_linked: bool = False


def instant(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def event_body(event_type: str, timestamp: datetime, data: dict) -> str:
    """The exact JSON sent and signed: ``{"type", "timestamp", "data"}``."""
    return json.dumps({"type": event_type, "timestamp": instant(timestamp), "data": data},
                      separators=(",", ":"), default=str)


def emit(tx: Tx, event_type: str, data: dict, *, partner_ids: Iterable[str] | None = None) -> list[str]:
    """Queue ``event_type`` in the caller's transaction; returns the delivery ids (``webhook-id``).

    ``partner_ids=None`` sends to every partner linked to ``data["member_id"]``. Nothing is
    sent unless the caller's transaction commits.
    """
    if isinstance(partner_ids, str):
        raise TypeError("partner_ids is a list of partner ids, not one id")
    ids = tuple(partner_ids) if partner_ids is not None else None
    return emit_many(tx, [Outgoing(event_type, data, ids)])


_ACTIVE_ENDPOINTS = select(WebhookEndpoint.__table__.c.partner_id, WebhookEndpoint.__table__.c.id).where(
    WebhookEndpoint.__table__.c.status == "active")  # built once: every posting asks
# The same read as SQL for a driver's cursor: on PostgreSQL a single request's journal sends it in the
# pipeline of its rows (``Journal.flush``), one round trip for both, and hands the answer to
# ``record_ledger_entries``.
ACTIVE_ENDPOINTS_SQL = "SELECT partner_id, id FROM webhook_endpoints WHERE status = 'active'"
LEDGER_EVENT_KINDS = ("earn", "bonus", "burn", "capture", "reversal", "expiry", "adjustment")


@per_dialect
def _linked_query(dialect: str):
    links = MemberLink.__table__
    terminated = links.c.partner_id.in_(select(Termination.__table__.c.partner_id))
    return select(links.c.member_id, links.c.partner_id, terminated.label("terminated")).where(
        among_bound(dialect, links.c.member_id, "ids"), among_bound(dialect, links.c.partner_id, "partners"))


def active_endpoints(tx: Tx) -> dict[str, str]:
    """Partner -> its active endpoint's id."""
    return dict(tx.session.execute(_ACTIVE_ENDPOINTS).all())


def emit_many(tx: Tx, events: list[Outgoing], endpoints: dict[str, str] | None = None) -> list[str]:
    """Queue many events set-based: a few reads and one multi-row insert, whatever their number."""
    for event in events:
        if event.event_type not in EVENT_TYPES:
            raise UnknownEventType(f"{event.event_type!r} is not a webhook event type")
        if event.partner_ids is None and not event.data.get("member_id"):
            raise ValueError("an event for every linked partner needs data['member_id']")
    if not events:
        return []
    if endpoints is None:
        endpoints = active_endpoints(tx)
    if not endpoints:
        return []
    members = {e.data["member_id"] for e in events if e.data.get("member_id")}
    # the links to the partners listening, and to the posters (listening or not): whether the poster
    # is linked to the member decides who hears of it
    named = {p for e in events if e.or_linked and e.partner_ids for p in e.partner_ids}
    linked: dict[str, set[str]] = {}
    terminated: set[str] = set()  # hear of no member: they get settlement.ready alone
    for member_id, partner_id, gone in among_rows(tx, _linked_query(tx.dialect), members, size=CHUNK,
                                                  partners=bound_list(tx.dialect, set(endpoints) | named)):
        linked.setdefault(member_id, set()).add(partner_id)
        if gone:
            terminated.add(partner_id)
    rows = []
    for event in events:
        member_id = event.data.get("member_id")
        allowed = linked.get(member_id, set()) if member_id else set(endpoints)
        wanted = allowed if event.partner_ids is None else set(event.partner_ids) & allowed
        data = event.data
        if event.or_linked and member_id and not wanted:
            # the partner that posted it is not linked to the member (a referral bonus earned at the
            # friend's partner): every partner the member is linked to hears of it, as of a network
            # bonus, and none of them gets the poster's own references
            wanted = allowed
            data = {k: v for k, v in data.items() if k not in ("reference", "original_reference")}
        body = event_body(event.event_type, tx.now, data)
        if member_id:  # a terminated partner hears of no member, even as the one that posted it
            wanted = wanted - terminated
        for partner_id in sorted(wanted & set(endpoints)):
            rows.append({"id": new_id("msg"), "endpoint_id": endpoints[partner_id], "partner_id": partner_id,
                         "event_type": event.event_type, "body": body, "status": "pending", "attempts": 0,
                         "created_at": tx.now, "retry_from": tx.now, "next_attempt_at": tx.now})
    if rows:
        tx.session.execute(insert(WebhookDelivery.__table__), rows)
    return [row["id"] for row in rows]


# -- deliveries that must not be sent any more ---------------------------------------------------

CANCELLED = "cancelled"
UNLINKED = "not sent: the member withdrew its consent from the partner"
ERASED = "not sent: the member was erased"
TERMINATED = "not sent: the partner was terminated"
SETTLEMENT_EVENTS = ("settlement.ready",)


def body_data(body: str) -> dict:
    """A delivery body's ``data`` object; empty for a body that is not one (never an error)."""
    try:
        data = json.loads(body).get("data") or {}
    except (ValueError, AttributeError):
        return {}
    return data if isinstance(data, dict) else {}


def members_named(event_type: str, body: str) -> set[str]:
    """The member ids a delivery's body names: its ``data.member_id``, and for ``member.merged`` its
    ``from`` and ``into`` too (``from`` and ``to`` of other events are no members: a tier's)."""
    data = body_data(body)
    keys = ("member_id", "from", "into") if event_type == "member.merged" else ("member_id",)
    return {data[key] for key in keys if isinstance(data.get(key), str)}


def cancel_deliveries(tx: Tx, ids: list[str], why: str) -> int:
    """Cancel these deliveries if still pending; the claim of one a worker is sending right now is taken
    back, so its outcome is not recorded over the cancellation (that one send may still arrive)."""
    done = 0
    for start in range(0, len(ids), CHUNK):
        done += tx.session.execute(update(deliveries_t).where(
            deliveries_t.c.id.in_(ids[start:start + CHUNK]), deliveries_t.c.status == "pending").values(
            status=CANCELLED, claim_token=None, last_error=why)).rowcount
    return done


def cancel_naming(tx: Tx, member_id: str, why: str, *, partner_ids: Iterable[str] | None = None,
                  keep: Iterable[str] = ()) -> int:
    """Cancel the pending deliveries that name the member (or a duplicate merged into it: the same
    person) to ``partner_ids`` (None: to every partner), but those in ``keep``; answers how many.

    A partner's pending deliveries are few (a backlog of three days at most); those whose body holds
    the id are read and the ones that truly name the member (``members_named``) cancelled."""
    named = {member_id, *tx.session.execute(select(members_t.c.id).where(
        members_t.c.merged_into == member_id)).scalars()}
    query = select(deliveries_t.c.id, deliveries_t.c.event_type, deliveries_t.c.body).where(
        deliveries_t.c.status == "pending",
        or_(*(deliveries_t.c.body.contains(m, autoescape=True) for m in sorted(named))))
    if partner_ids is not None:
        query = query.where(deliveries_t.c.partner_id.in_(list(partner_ids)))
    kept = set(keep)
    ids = [row.id for row in tx.session.execute(query)
           if row.id not in kept and members_named(row.event_type, row.body) & named]
    return cancel_deliveries(tx, ids, why)


def cancel_member_events(tx: Tx, partner_id: str, why: str = TERMINATED) -> int:
    """Cancel the partner's pending deliveries about members (all but ``settlement.ready``)."""
    ids = tx.session.execute(select(deliveries_t.c.id).where(
        deliveries_t.c.partner_id == partner_id, deliveries_t.c.status == "pending",
        deliveries_t.c.event_type.not_in(SETTLEMENT_EVENTS))).scalars().all()
    return cancel_deliveries(tx, list(ids), why)


# -- ledger events -----------------------------------------------------------------------------

def _common(entry: dict) -> dict:
    result = entry.get("result") or {}
    data = {"transaction_id": entry["id"], "member_id": entry["member_id"], "points": entry["points"],
            "posted_at": instant(entry["posted_at"])}
    if entry.get("partner_id"):
        data["partner_id"] = entry["partner_id"]
    if entry.get("reference"):
        data["reference"] = entry["reference"]
    if "balance" in result:
        data["balance"] = result["balance"]
    return data


def _funded_by(kind: str, lots: list[dict] | None) -> str:
    """"partner" or "network", as the earn's answer says: an earn is the partner's issuance; a bonus
    is the network's (operator bonuses, network-funded referral bonuses) unless its lot is funded by
    a partner (a partner-funded referral bonus: the lot names the partner)."""
    if kind == "earn":
        return "partner"
    return "partner" if any(lot.get("funded_by") not in (None, NETWORK) for lot in lots or ()) else "network"


def ledger_event(entry: dict, original_kinds: dict[str, str]) -> Outgoing | None:
    """The webhook event a journal entry produces, if any (pure)."""
    kind, partner = entry["kind"], entry.get("partner_id")
    # the partner that posted it (if it is not linked to the member: the member's partners); none: all of those
    to = {"partner_ids": (partner,), "or_linked": True} if partner else {}
    if kind in ("earn", "bonus"):
        lots = (entry.get("result") or {}).get("lots")
        data = _common(entry) | {"funded_by": _funded_by(kind, lots)}
        if lots:
            data["lots"] = [{"lot_id": l["lot_id"], "points": l["points"],
                             "expires_at": l["expires_at"].replace("+00:00", "Z"), "funded_by": l["funded_by"]}
                            for l in lots]
        return Outgoing("points.earned", data, **to)
    if kind == "burn":
        return Outgoing("points.redeemed", _common(entry) | {"source": "burn"}, **to)
    if kind == "capture":
        return Outgoing("points.redeemed", _common(entry) | {"source": "hold_capture", "hold_id": entry["hold_id"]},
                        **to)
    if kind == "reversal":
        data = _common(entry) | {"original_transaction_id": entry["original_entry_id"],
                                 "original_kind": original_kinds.get(entry["original_entry_id"])}
        original_reference = (entry.get("result") or {}).get("original_reference")
        if original_reference:
            data["original_reference"] = original_reference
        return Outgoing("points.reversed", data, **to)
    if kind == "expiry":  # no partner acted: every partner the member is linked to hears of it
        return Outgoing("points.expired", _common(entry), None)
    if kind == "adjustment" and (entry.get("request") or {}).get("kind") == "adjustment":
        return Outgoing("points.adjusted", adjustment_data(entry), None)
    # a merge's adjustment (the duplicate's points moving to the survivor) is told as member.merged
    return None


def adjustment_data(entry: dict) -> dict:
    """An operator's adjustment as every partner linked to the member hears of it: the points signed
    (negative: taken away), the new balance, a credit's lot. Not the operator's reason (free text,
    it may name the person) nor the request key behind the entry's reference (the network's own)."""
    result = entry.get("result") or {}
    data = {"transaction_id": entry["id"], "member_id": entry["member_id"], "points": entry["request"]["points"],
            "posted_at": instant(entry["posted_at"])}
    if "balance" in result:
        data["balance"] = result["balance"]
    if result.get("lots"):
        data["lots"] = [{"lot_id": l["lot_id"], "points": l["points"],
                         "expires_at": l["expires_at"].replace("+00:00", "Z"), "funded_by": l["funded_by"]}
                        for l in result["lots"]]
    return data


def _with_events(entries: list[dict]) -> list[dict]:
    return [e for e in entries if e["kind"] in LEDGER_EVENT_KINDS and e.get("member_id")]


def needs_endpoints(entries: list[dict]) -> bool:
    """Whether ``record_ledger_entries`` reads the active endpoints for these entries."""
    return bool(_with_events(entries))


def record_ledger_entries(tx: Tx, entries: list[dict], endpoints: dict[str, str] | None = None) -> list[str]:
    """Queue the events of the entries a journal is writing (called from ``Journal.flush``).
    ``endpoints``: the active endpoints (``active_endpoints``), when the caller read them in this unit."""
    relevant = _with_events(entries)
    if not relevant:
        return []
    if endpoints is None:
        endpoints = active_endpoints(tx)
    if not endpoints:  # nobody listens: no events to build
        return []
    originals = sorted({e["original_entry_id"] for e in relevant if e["kind"] == "reversal"})
    in_batch = {e["id"]: e["kind"] for e in entries}
    kinds = {i: in_batch[i] for i in originals if i in in_batch}
    missing = [i for i in originals if i not in kinds]
    for start in range(0, len(missing), CHUNK):
        kinds.update((row.id, row.kind) for row in tx.session.execute(select(Entry.id, Entry.kind).where(
            Entry.id.in_(missing[start:start + CHUNK]))))
    events = [event for event in (ledger_event(e, kinds) for e in relevant) if event is not None]
    return emit_many(tx, events, endpoints)


def record_settlement_ready(tx: Tx, cycle: date, payment_date: date, net_positions: dict[str, int],
                            manifest_sha256: str, from_float: dict[str, int] | None = None) -> list[str]:
    """Tell each partner of a settled cycle its own net position (never anyone else's), what of it
    its prepaid float settled, and which way the rest moves by bank."""
    from shared.settlement.files import NETWORK, statement_name

    events = []
    for party, net in sorted(net_positions.items()):
        if party == NETWORK:
            continue
        floated = (from_float or {}).get(party, 0)
        by_bank = net + floated
        events.append(Outgoing("settlement.ready", {
            "cycle_date": cycle.isoformat(), "partner_id": party, "net_minor": net,
            "from_float_minor": floated, "by_bank_minor": by_bank,
            "direction": "receive" if by_bank > 0 else "pay" if by_bank < 0 else "none",
            "currency": tx.settings.currency, "payment_date": payment_date.isoformat(),
            "statement": statement_name(party), "manifest_sha256": manifest_sha256,
        }, (party,)))
    return emit_many(tx, events)
