"""Operator adjustments of a member's points (an operator's decision, with a reason), through
``network:adjustments``.

A positive adjustment is a network-funded lot of its own, like a bonus but funded by
``network:adjustments``: it never mixes into a partner's lot and moves no money (the network
pays whoever later redeems it, as for any network-funded lot).

A negative adjustment takes free points from the member's lots in consumption order
(earliest expiry first; due lots expire first, as before a burn) and never more than the member
has available; falling short while the member has points held, it first releases the member's
timed-out holds, as a burn does (docs/ledger.md, decision 7). The points leave the member
unredeemed, so the money follows the design's rule for points that leave unredeemed (expiry's):
a postpaid or network-funded lot moves no money (its funder's liability simply ends); a prepaid
lot pays its issuer back its value less the network's breakage share, under the contract version
it was issued under.

Exactly once: ``request_key`` (the dashboard's form key, or the approved request's id) becomes the
entry's reference; the same key, for the same request, answers the first result again.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from shared.db.advisory import lock_until_commit
from shared.db.database import Tx
from shared.db.types import new_id
from shared.errors import InsufficientPoints, InvalidPoints, ReferenceConflict, UnknownMember, ValidationFailed
from shared.ledger import expiry
from shared.ledger.cycles import enter_open_cycle
from shared.ledger.due import load_due
from shared.ledger.events import MAX_POINTS
from shared.ledger.journal import Journal
from shared.ledger.posting import release_lapsed_holds
from shared.ledger.rules import LotState, breakage_lines, take_from_lots
from shared.ledger.state import load_lots, lock_members
from shared.models import Entry
from shared.partners.contracts import terms_by_id

ACCOUNT = "network:adjustments"
MAX_REASON = 500


def adjust_member(tx: Tx, member_id: str, points: int, *, reason: str, request_key: str | None = None) -> dict:
    """Add (``points`` > 0) or take away (``points`` < 0) a member's points; returns the entry's result."""
    if isinstance(points, bool) or not isinstance(points, int) or points == 0 or abs(points) > MAX_POINTS:
        raise InvalidPoints(f"an adjustment is a non-zero whole number of points, not {points!r}")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("an adjustment needs a reason")
    if len(reason) > MAX_REASON:
        raise ValidationFailed(f"the reason is at most {MAX_REASON} characters")
    reference = f"adjustment:{request_key}" if request_key else None
    if reference is not None and len(reference) > 128:
        raise ValidationFailed("the request key is at most 100 characters")
    request = {"kind": "adjustment", "member_id": member_id, "points": points, "reason": reason}
    journal = Journal(tx, enter_open_cycle(tx))
    journal.members = lock_members(tx, [member_id])  # a repeat of the same key waits here for the first
    member = journal.members.get(member_id)
    if member is None:
        raise UnknownMember(f"no member {member_id} (unknown, erased or merged into another member)")
    if reference is not None:
        # a request key names one adjustment whatever member it names; (partner, reference) is not unique
        # where the partner is NULL, so twins take turns on the key (PostgreSQL; SQLite's writers run singly)
        if tx.is_postgres:
            lock_until_commit(tx.session, "adjustment-reference", reference)
        existing = tx.session.execute(select(Entry.request, Entry.result).where(
            Entry.kind == "adjustment", Entry.partner_id.is_(None), Entry.reference == reference)).first()
        if existing is not None:
            if json.loads(existing.request) != request:
                raise ReferenceConflict(f"request {request_key!r} was already used for a different adjustment")
            return json.loads(existing.result) | {"repeated": True}
    load_due(journal)  # the balance answered (and sent to partners) as a spend now would find it
    if points > 0:
        entry = _credit(journal, member, points, reference, request)
    else:
        entry = _debit(journal, member, -points, reference, request)
    entry["result"] |= {"entry_id": entry["id"], "kind": "adjustment", "member_id": member_id, "points": points,
                        "reason": reason, "posted_at": tx.now.isoformat(), "balance": member.balance()}
    journal.flush()
    return entry["result"]


def _credit(journal: Journal, member, points: int, reference: str | None, request: dict) -> dict:
    tx = journal.tx
    entry = journal.entry("adjustment", points, member_id=member.id, reference=reference, occurred_at=tx.now,
                          request=request)
    lot = LotState(new_id("lot"), member.id, entry["id"], None, "network", None, points, points, 0, tx.now,
                   tx.settings.lot_expiry(tx.now))
    journal.new_lot(lot)
    journal.transfer(entry, ACCOUNT, f"member:{member.id}", points)
    member.change(available=points)
    entry["result"] = {"lots": [{"lot_id": lot.id, "points": points, "expires_at": lot.expires_at.isoformat(),
                                 "funded_by": "network"}]}
    return entry


def _debit(journal: Journal, member, points: int, reference: str | None, request: dict) -> dict:
    tx = journal.tx
    lots = list(load_lots(tx, member_ids=[member.id]).values())
    journal.lots.update({lot.id: lot for lot in lots})
    expiry.expire_due(journal, member, lots, tx.now)  # expired points are no longer the member's to take
    plan = take_from_lots(lots, points)
    if plan is None and member.held and release_lapsed_holds(journal, member.id)[0]:
        # points whose hold timed out are the member's again, as for a short burn (decision 7)
        lots = [lot for lot in journal.lots.values() if lot.member_id == member.id]
        expiry.expire_due(journal, member, lots, tx.now)  # released points of a lot past its expiry
        plan = take_from_lots(lots, points)
    if plan is None:
        raise InsufficientPoints(f"member has {member.available} points available; an adjustment cannot take "
                                 f"{points}", available=member.available)
    terms = terms_by_id(tx, {lot.contract_id for lot, _ in plan if lot.billing == "prepaid"})
    entry = journal.entry("adjustment", points, member_id=member.id, reference=reference, occurred_at=tx.now,
                          request=request)
    for lot, taken in plan:
        journal.move(entry, lot, taken)
        for line in breakage_lines(lot, taken, terms.get(lot.contract_id)):
            journal.line(entry, line)
    journal.transfer(entry, f"member:{member.id}", ACCOUNT, points)
    member.change(available=-points)
    entry["result"] = {"consumed": [{"lot_id": lot.id, "points": taken} for lot, taken in plan]}
    return entry
