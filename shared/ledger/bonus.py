"""Network-funded bonus points: always their own lot, funded by ``network:promotions``."""

from __future__ import annotations

import json

from sqlalchemy import select

from shared.db.advisory import lock_until_commit
from shared.db.database import Tx
from shared.db.types import new_id
from shared.errors import InvalidPoints, ReferenceConflict, UnknownMember, ValidationFailed
from shared.ledger.cycles import enter_open_cycle
from shared.ledger.due import load_due
from shared.ledger.events import MAX_POINTS
from shared.ledger.journal import Journal
from shared.ledger.rules import LotState
from shared.ledger.state import lock_members
from shared.models import Entry


def grant_bonus(tx: Tx, member_id: str, points: int, *, reason: str, partner_id: str | None = None,
                reference: str | None = None) -> dict:
    """Post a network-funded bonus lot (network campaigns, network-funded referral bonuses).

    ``partner_id`` only attributes the bonus (where it happened); the network funds it.
    """
    if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= MAX_POINTS:
        raise InvalidPoints(f"points must be a positive integer of at most {MAX_POINTS}, not {points!r}")
    if not reason:
        raise ValidationFailed("a bonus needs a reason")
    if reference is not None:
        if partner_id is None:
            # (partner, reference) is unique in the database, but not where the partner is NULL: twins of a
            # network bonus take turns on its reference (PostgreSQL; SQLite's writers run one at a time)
            if tx.is_postgres:
                lock_until_commit(tx.session, "bonus-reference", reference)
            same = (Entry.partner_id.is_(None), Entry.kind == "bonus")
        else:
            same = (Entry.partner_id == partner_id,)
        existing = tx.session.execute(select(Entry.request, Entry.result).where(
            *same, Entry.reference == reference)).first()
        if existing is not None:
            if json.loads(existing.request) != {"kind": "bonus", "member_id": member_id, "points": points,
                                                "reason": reason}:
                raise ReferenceConflict(f"reference {reference!r} already used for a different request")
            return json.loads(existing.result)
    journal = Journal(tx, enter_open_cycle(tx))
    journal.members = lock_members(tx, [member_id])
    member = journal.members.get(member_id)
    if member is None:
        raise UnknownMember(f"no member {member_id}")
    load_due(journal)  # the balance answered (and sent to partners) as a spend now would find it
    entry = journal.entry("bonus", points, partner_id=partner_id, member_id=member_id, reference=reference,
                          occurred_at=tx.now,
                          request={"kind": "bonus", "member_id": member_id, "points": points, "reason": reason})
    lot = LotState(new_id("lot"), member_id, entry["id"], None, "network", None, points, points, 0, tx.now,
                   tx.settings.lot_expiry(tx.now))
    journal.new_lot(lot)
    journal.transfer(entry, "network:promotions", f"member:{member_id}", points)
    member.change(available=points)
    entry["result"] = {"entry_id": entry["id"], "kind": "bonus", "member_id": member_id, "points": points,
                       "reference": reference, "lots": [{"lot_id": lot.id, "points": points,
                                                          "expires_at": lot.expires_at.isoformat(),
                                                          "funded_by": "network"}],
                       "posted_at": tx.now.isoformat(), "balance": member.balance()}
    journal.flush()
    return entry["result"]
