"""A member's subject-access export: one JSON document of everything the network holds about the person
(GDPR Art. 15, PIPL Art. 45), for ``pointsnet members export``.

It reads what the operator's views read — the member's record and contacts (``shared.members.directory``),
its summary (``shared.programme.summary.member_summary``: balance, tier, activity status, their histories,
the members merged into it), its open lots (``shared.ledger.queries.member_lots_page``) — and what they
show only in part: its partner links with their customer references and the links it withdrew, its holds,
activity and campaign awards, referrals, the alerts that name it, and its whole ledger history, each entry
with what its request held beyond the line (a purchase's amount, currency and item lines, an activity's
name, a reversal's original reference, an operator's reason). Duplicates merged into the member are the same person:
their contacts (kept so that they find the member) and the entries posted for them are exported with
the member's; their lots, holds, awards and links moved to it with the merge.

The balance, holds and lots are as a spend at the export's instant would find them, as the balance of
``GET /v1/members/{id}`` is (``shared.ledger.due``): a hold past its timeout that the hold-timeout job has
not released yet is shown as the job will leave it (``expired``, flagged ``expiry_pending``) and its lots
without its reservation (what it reserved past the expiry its lot had then, forfeited); a lot past its
expiry is listed with ``expired: true`` (its free points no longer count in the balance).

An erased member's document says so and holds nothing else: its personal data is gone, and what the
ledger keeps under its opaque id no longer relates to a person the network can identify.

Run it in one read-only unit of work (a consistent snapshot). The ledger history is read page by page
and written entry by entry (``write``), so a long history never sits in memory at once.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator

from cryptography.exceptions import InvalidTag
from sqlalchemy import or_, select

from shared.config import ConfigurationError
from shared.db.database import Tx
from shared.errors import UnknownMember
from shared.db.lists import among_rows
from shared.ledger.due import due_holds_query, group_due_holds
from shared.ledger.queries import entries_after, member_lots_page
from shared.members import directory
from shared.members.privacy import Keyring
from shared.models import (
    ActivityAward, Alert, CampaignAward, Entry, Hold, Member, MemberLink, MemberMerge, MemberUnlink, Partner,
    Referral, ReferralBonus,
)
from shared.programme.summary import member_summary

FORMAT = "pointsnet.member-export.v1"
PAGE = 500  # entries (and lots) read at a time


def _at(value) -> str | None:
    return value.isoformat() if value is not None else None


def _contacts(tx: Tx, keyring: Keyring, member_id: str) -> dict[str, str | None]:
    """The member's name, phone and e-mail as held, decrypted; a ciphertext this host's keyring cannot
    open is a configuration error (the key it was sealed under is missing here), never left out."""
    try:
        return directory.personal_data(tx, keyring, member_id)
    except (KeyError, ValueError, InvalidTag) as error:
        raise ConfigurationError(f"the personal data of member {member_id} cannot be decrypted with this host's "
                                 f"keyring ({type(error).__name__}): give it the network's keys "
                                 "(POINTSNET_PII_KEYS_FILE or POINTSNET_PII_KEYS)") from None


def _duplicates(tx: Tx, keyring: Keyring, member_id: str) -> list[dict]:
    """The members merged into this one, each with its merge and its contacts. ``merged_into`` names them
    all (a merge re-points earlier duplicates: one hop), whereas a merge record names the survivor of its
    day, which may itself have been merged into this member since."""
    rows = tx.session.execute(select(Member.id, Member.created_at, MemberMerge.survivor_id, MemberMerge.at,
                                     MemberMerge.reason)
                              .outerjoin(MemberMerge, MemberMerge.duplicate_id == Member.id)
                              .where(Member.merged_into == member_id).order_by(MemberMerge.at, Member.id)).all()
    return [{"member_id": r.id, "enrolled_at": _at(r.created_at), "merged_into": r.survivor_id,
             "merged_at": _at(r.at), "reason": r.reason, "personal_data": _contacts(tx, keyring, r.id)}
            for r in rows]


def _links(tx: Tx, member_id: str) -> list[dict]:
    rows = tx.session.execute(select(MemberLink.partner_id, Partner.name, MemberLink.customer_ref, MemberLink.linked_at)
                              .join(Partner, Partner.id == MemberLink.partner_id)
                              .where(MemberLink.member_id == member_id)
                              .order_by(MemberLink.linked_at, MemberLink.partner_id)).all()
    return [{"partner_id": r.partner_id, "partner": r.name, "customer_ref": r.customer_ref,
             "linked_at": _at(r.linked_at)} for r in rows]


def _past_links(tx: Tx, person: list[str]) -> list[dict]:
    """The links the person withdrew (``member_unlinks``), of the member and of its duplicates: which partner,
    when linked and unlinked, at whose request and the operator's reference (no ``customer_ref``: it went with
    the link)."""
    rows = tx.session.execute(select(MemberUnlink.member_id, MemberUnlink.partner_id, Partner.name,
                                     MemberUnlink.linked_at, MemberUnlink.unlinked_at, MemberUnlink.requested_by,
                                     MemberUnlink.reason)
                              .join(Partner, Partner.id == MemberUnlink.partner_id)
                              .where(MemberUnlink.member_id.in_(person))
                              .order_by(MemberUnlink.unlinked_at, MemberUnlink.id)).all()
    return [{"partner_id": r.partner_id, "partner": r.name, "member_id": r.member_id, "linked_at": _at(r.linked_at),
             "unlinked_at": _at(r.unlinked_at), "requested_by": r.requested_by, "reason": r.reason} for r in rows]


def _due_holds(tx: Tx, member_id: str) -> dict[str, tuple]:
    """The member's open holds past their timeout, which the hold-timeout job has not released yet: hold id
    -> (hold id, points, [(lot id, reserved, lot's expiry when reserved, lot's expiry)]), as
    ``shared.ledger.due`` reads them for the balance."""
    rows = among_rows(tx, due_holds_query(tx.dialect), [member_id], now=tx.now)
    return group_due_holds(rows).get(member_id, {})


def _lots(tx: Tx, member_id: str, due_holds: dict[str, tuple]) -> list[dict]:
    """The open lots in consumption order, with their funder's name (the dashboard's lots page), as the
    release of ``due_holds`` leaves them (``release_hold``): their reservations gone, and what they reserved
    past the expiry its lot had then forfeited (a lot so emptied is closed: left out)."""
    from shared.settlement.positions import names_of

    lots, offset = [], 0
    while True:
        rows, total = member_lots_page(tx, member_id, offset=offset, limit=PAGE)
        lots += rows
        offset += len(rows)
        if not rows or offset >= total:
            break
    released: dict[str, tuple[int, int]] = {}  # lot id -> (points released, of them forfeited)
    for _, _, reserved in due_holds.values():
        for lot_id, part, expired_at, lot_expires_at in reserved:
            lapsed = expired_at is not None and expired_at <= tx.now < lot_expires_at
            points, forfeited = released.get(lot_id, (0, 0))
            released[lot_id] = (points + part, forfeited + (part if lapsed else 0))
    for lot in lots:
        points, forfeited = released.get(lot["lot_id"], (0, 0))
        lot["reserved"] -= points
        lot["remaining"] -= forfeited
    lots = [lot for lot in lots if lot["remaining"] > 0]
    names = names_of(tx, [lot["funded_by"] for lot in lots])
    return [lot | {"funder": names.get(lot["funded_by"], lot["funded_by"])} for lot in lots]


def _holds(tx: Tx, member_id: str, due_holds: dict[str, tuple]) -> list[dict]:
    """The member's holds; one of ``due_holds`` (open, past its timeout) as the hold-timeout job will leave
    it: ``expired``, with ``expiry_pending`` (the job has not written so yet: no ``resolved_at``)."""
    rows = tx.session.execute(select(Hold, Partner.name).join(Partner, Partner.id == Hold.partner_id)
                              .where(Hold.member_id == member_id).order_by(Hold.created_at, Hold.id)).all()
    holds = []
    for h, name in rows:
        hold = {"hold_id": h.id, "partner_id": h.partner_id, "partner": name, "points": h.points,
                "captured_points": h.captured_points, "status": h.status, "created_at": _at(h.created_at),
                "expires_at": _at(h.expires_at), "resolved_at": _at(h.resolved_at)}
        if h.id in due_holds:
            hold |= {"status": "expired", "expiry_pending": True}
        holds.append(hold)
    return holds


def _awards(tx: Tx, member_id: str) -> tuple[list[dict], list[dict]]:
    activities = tx.session.execute(select(ActivityAward).where(ActivityAward.member_id == member_id)
                                    .order_by(ActivityAward.business_day, ActivityAward.entry_id)).scalars()
    campaigns = tx.session.execute(select(CampaignAward).where(CampaignAward.member_id == member_id)
                                   .order_by(CampaignAward.entry_id, CampaignAward.id)).scalars()
    return ([{"entry_id": a.entry_id, "partner_id": a.partner_id, "activity": a.activity,
              "business_day": a.business_day.isoformat(), "points": a.points} for a in activities],
            [{"entry_id": c.entry_id, "campaign": c.campaign, "points": c.points} for c in campaigns])


def _referrals(tx: Tx, person: list[str]) -> dict[str, list[dict]]:
    """Referrals the person made and was made by, whichever of its records they name, with the bonus paid."""
    rows = tx.session.execute(
        select(Referral, ReferralBonus.points, ReferralBonus.entry_id)
        .outerjoin(ReferralBonus, ReferralBonus.referee_member_id == Referral.referee_member_id)
        .where(or_(Referral.referrer_member_id.in_(person), Referral.referee_member_id.in_(person)))
        .order_by(Referral.created_at, Referral.referee_member_id)).all()
    made, made_by = [], []
    for referral, bonus_points, bonus_entry in rows:
        bonus = {"points": bonus_points, "entry_id": bonus_entry} if bonus_entry else None
        common = {"partner_id": referral.partner_id, "at": _at(referral.created_at), "bonus": bonus}
        if referral.referee_member_id in person:
            made_by.append({"referrer": referral.referrer_member_id, "member_id": referral.referee_member_id}
                           | common)
        if referral.referrer_member_id in person:
            made.append({"referee": referral.referee_member_id, "member_id": referral.referrer_member_id} | common)
    return {"made": made, "made_by": made_by}


def _alerts(tx: Tx, person: list[str]) -> list[dict]:
    """The operators' alerts that name the person (a velocity limit refusing its earns, a partner's float
    exhausted by them…), oldest first. Few per member: alerts of one kind, partner and member collapse into
    one row a day."""
    rows = tx.session.execute(select(Alert, Partner.name).outerjoin(Partner, Partner.id == Alert.partner_id)
                              .where(Alert.member_id.in_(person)).order_by(Alert.first_at, Alert.id)).all()
    return [{"kind": a.kind, "partner_id": a.partner_id, "partner": name, "member_id": a.member_id,
             "detail": json.loads(a.detail), "first_at": _at(a.first_at), "last_at": _at(a.last_at),
             "count": a.count} for a, name in rows]


_ON_THE_LINE = ("kind", "member_id", "points")  # a request's fields the entry's line says (when the same)


def _details(request: str | None, line: dict) -> dict:
    """What the entry's request held beyond what its line says: a purchase's amount, currency and item
    lines (SKU, category, line amount, quantity), an activity's name, a reversal's original reference, a
    capture's hold, an operator's reason… The time the partner gave is the line's ``occurred_at``."""
    try:
        content = json.loads(request or "{}")
    except ValueError:
        return {}
    if not isinstance(content, dict):
        return {}
    details = {key: value for key, value in content.items()
               if value is not None and key != "occurred_at" and not (key in _ON_THE_LINE and value == line[key])}
    if isinstance(details.get("items"), list):
        details["items"] = [dict(zip(("sku", "category", "amount", "quantity"), item)) if isinstance(item, list)
                            else item for item in details["items"]]
    return details


def _entries_of(tx: Tx, member_id: str) -> Iterator[tuple]:
    """One member's entries in (posted_at, id) order, a page at a time on ix_entries_member_posted."""
    position = None
    while True:
        rows = tx.session.execute(
            select(Entry.posted_at, Entry.id, Entry.kind, Entry.points, Entry.partner_id, Partner.name,
                   Entry.reference, Entry.occurred_at, Entry.member_id, Entry.request)
            .outerjoin(Partner, Partner.id == Entry.partner_id)
            .where(Entry.member_id == member_id, entries_after(position, descending=False))
            .order_by(Entry.posted_at, Entry.id).limit(PAGE)).all()
        yield from rows
        if len(rows) < PAGE:
            return
        position = (rows[-1].posted_at, rows[-1].id)


def ledger_history(tx: Tx, person: list[str]) -> Iterator[dict]:
    """The entries posted for the member and its merged duplicates, oldest first, merged as they are read."""
    streams = [_entries_of(tx, member_id) for member_id in person]
    for r in heapq.merge(*streams, key=lambda row: (row.posted_at, row.id)):
        line = {"entry_id": r.id, "kind": r.kind, "points": r.points, "partner_id": r.partner_id, "partner": r.name,
                "reference": r.reference, "occurred_at": _at(r.occurred_at), "posted_at": _at(r.posted_at),
                "member_id": r.member_id}
        yield line | {"details": _details(r.request, line)}


def export_member(tx: Tx, keyring: Keyring, member_id: str, write: Callable[[str], object]) -> dict:
    """Write the member's document (JSON, indented, the ledger history last and one entry a line) through
    ``write``; returns what the audit log may note of it (the member's status and how many entries: never
    its contacts). Refuses an unknown id, and a merged duplicate's (its survivor is the person's record)."""
    record = directory.member_record(tx, member_id)
    if record["merged_into"]:
        raise UnknownMember(f"member {member_id} was merged into {record['merged_into']}: export that member")
    document = {"format": FORMAT, "generated_at": tx.now.isoformat(), "member_id": member_id,
                "status": record["status"]}
    if record["status"] == "erased":
        document |= {"erased_at": record["erased_at"],
                     "note": "this member's personal data was erased: the network holds none of it any more"}
        write(json.dumps(document, indent=2) + "\n")
        return {"status": "erased", "entries": 0}
    summary = member_summary(tx, member_id, history_limit=None)  # None: the whole histories
    duplicates = _duplicates(tx, keyring, member_id)
    person = [member_id, *(duplicate["member_id"] for duplicate in duplicates)]
    activities, campaigns = _awards(tx, member_id)
    due_holds = _due_holds(tx, member_id)  # what the balance above applied: the holds and lots show it too
    tier = summary["tier"]
    document |= {
        "member": {"enrolled_at": summary["enrolled_at"], "enrolled_by": record["enrolled_by"],
                   "tier": tier["tier"] if tier else None, "tier_since": tier["since"] if tier else None,
                   "qualifying_points": tier["qualifying_points"] if tier else None,
                   "activity_status": summary["activity_status"],
                   "activity_status_since": summary["activity_status_since"],
                   "personal_data": _contacts(tx, keyring, member_id)},
        "merged_from": duplicates,
        "links": _links(tx, member_id),
        "past_links": _past_links(tx, person),
        "balance": summary["balance"],
        "lots": _lots(tx, member_id, due_holds),
        "holds": _holds(tx, member_id, due_holds),
        "activity_awards": activities,
        "campaign_awards": campaigns,
        "referrals": _referrals(tx, person),
        "tier_history": summary["tier_history"],
        "status_history": summary["status_history"],
        "expiry_reminders": summary["expiry_reminders"],
        "alerts": _alerts(tx, person),
    }
    head = json.dumps(document, indent=2)
    write(head[:-2] + ',\n  "entries": [')  # the document without its closing "\n}", then the history
    count = 0
    for entry in ledger_history(tx, person):
        write(("," if count else "") + "\n    " + json.dumps(entry))
        count += 1
    write("\n  ]\n}\n")
    return {"status": record["status"], "entries": count}
