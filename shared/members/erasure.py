"""Erasure of a member's personal data (an operator's decision), keeping the ledger intact and verifiable.

The ledger only ever names the member by its opaque id, so erasing removes the
ciphertexts and blind-index values and leaves every entry, posting and obligation
line as it was. What the member still has is forfeited as breakage by one ``expiry``
entry with expiry's money rules (a prepaid lot pays its issuer the breakage refund;
postpaid and network-funded points move no money). Refused while holds are open:
their points belong to a redemption in progress. A hold that has timed out is no longer
open (docs/ledger.md, decision 7: it can be neither captured nor voided, and its points
are the member's again): erasure releases it first, as the hold-timeout job would (a
``hold_expiry`` entry for the hold's partner), then forfeits its points with the rest.
Recorded in ``member_erasures``; every partner linked to the member hears ``member.erased`` (its id
and the time only), queued in the erasure's own transaction, besides the ``points.expired`` of what
was forfeited. Deliveries naming the member queued before and still pending (retries) are ``cancelled``
in that transaction, to every partner: never sent (one a worker is sending at that moment may still arrive).
"""

from __future__ import annotations

import json
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from sqlalchemy import and_, delete, func, insert, or_, select, update

from shared.db.database import Tx
from shared.db.types import new_id
from shared.errors import HoldsOpen, MemberErased, UnknownMember
from shared.ledger.cycles import cycle_date_for, enter_open_cycle, enter_open_cycle_once_posted
from shared.ledger.expiry import forfeit
from shared.ledger.idempotency import request_hash
from shared.ledger.journal import Journal, canonical_json
from shared.ledger.posting import release_lapsed_holds
from shared.ledger.state import load_lots, lock_members
from shared.members.privacy import Keyring
from shared.models import Hold, IdempotencyRecord, LinkToken, Member, MemberErasure, MemberLink
from shared.webhooks import emit
from shared.webhooks.outbox import ERASED, cancel_naming, instant

members_t, links_t, records_t = Member.__table__, MemberLink.__table__, IdempotencyRecord.__table__
ENROLMENT_PATH = "/v1/members"
NO_PERSONAL_DATA = {"phone_ct": None, "phone_bidx": None, "email_ct": None, "email_bidx": None, "name_ct": None}


def count_open_holds(tx: Tx, member_id: str) -> int:
    """Holds of the member still open and not timed out (an erasure waits until none are). A hold past its
    ``expires_at`` can be neither captured nor voided: erasure releases it (``release_lapsed_holds``)."""
    return tx.session.execute(select(func.count()).select_from(Hold.__table__).where(
        Hold.member_id == member_id, Hold.status == "open", Hold.expires_at > tx.now)).scalar_one()


def _blank(session, row, path: str) -> None:
    """The kept request of ``row`` (an API enrolment) becomes ``{"method", "path", "body": {"erased": true}}``
    with its hash: the contact's keyed hashes go, and a retry with its Idempotency-Key is refused as a
    reused key rather than enrolling the person again."""
    blank = {"method": "POST", "path": path, "body": {"erased": True}}
    session.execute(update(records_t).where(records_t.c.partner_id == row.partner_id, records_t.c.key == row.key)
                    .values(request=canonical_json(blank), request_hash=request_hash(blank)))


def forget_enrolment_requests(tx: Tx, member_ids: list[str], *, partner_ids: list[str] | None = None) -> int:
    """Blank the stored request of the API enrolments (``POST /v1/members``) that answered with one of
    ``member_ids``; returns how many. ``partner_ids``: only those partners' (a member withdrawing its
    consent from one partner, shared/members/consent.py), rather than every partner linked to the member.

    Such a record keeps the contact fields as keyed hashes (``request.phone`` …, never in clear) next to
    the member id in its answer: the same hashes as the blind-index values erasure removes. Its request
    (and request hash) become ``{"method", "path", "body": {"erased": true}}``, so a retry with its
    Idempotency-Key is refused as a reused key (``idempotency_key_reused``) rather than enrolling the
    person again; the answer (member id, balance) holds no personal data and stays.

    Only the partners linked to the member can have such a record (an enrolment that names a member
    links it; a merge moves the duplicate's links or keeps the survivor's), and only records made since
    the oldest of the members was, so the search is those partners' records of that time, narrowed by
    ``LIKE`` on the path (the end of the canonical request) and the member id in the answer, then
    checked exactly on the parsed JSON.
    """
    session = tx.session
    partners = partner_ids if partner_ids is not None else session.execute(
        select(links_t.c.partner_id).where(links_t.c.member_id == member_ids[0])).scalars().all()
    if not partners:
        return 0
    # an enrolment's record is no older than the member it names: only records since then
    since = session.execute(select(func.min(members_t.c.created_at)).where(members_t.c.id.in_(member_ids))).scalar()
    found = session.execute(select(records_t.c.partner_id, records_t.c.key, records_t.c.request, records_t.c.response)
                            .where(records_t.c.partner_id.in_(sorted(partners)), records_t.c.created_at >= since,
                                   records_t.c.request.endswith(f'{ENROLMENT_PATH}"}}', autoescape=True),
                                   or_(*(records_t.c.response.contains(f'"member_id":"{m}"', autoescape=True)
                                         for m in member_ids)))).all()
    blanked = 0
    for row in found:
        request, response = json.loads(row.request), json.loads(row.response)
        if not (isinstance(request, dict) and isinstance(response, dict) and request.get("method") == "POST"
                and str(request.get("path")).endswith(ENROLMENT_PATH) and response.get("member_id") in member_ids):
            continue
        _blank(session, row, request["path"])
        blanked += 1
    return blanked


class RequestHashes(NamedTuple):
    """The keyed hashes an enrolment's kept request may hold of a member: its phone and e-mail (and its
    merged duplicates'), normalised, under every key of the keyring, whichever partner sent it; and each
    partner's customer reference of the member, in that partner's requests only."""
    contacts: dict[str, set[str]]  # "phone" / "email" -> hashes
    refs: dict[str, set[str]]  # partner id -> hashes of its customer_ref


def request_hashes(tx: Tx, keyring: Keyring, member_ids: list[str]) -> RequestHashes:
    contacts: dict[str, set[str]] = {"phone": set(), "email": set()}
    for row in tx.session.execute(select(members_t.c.id, members_t.c.phone_ct, members_t.c.email_ct)
                                  .where(members_t.c.id.in_(member_ids))):
        for field, sealed in (("phone", row.phone_ct), ("email", row.email_ct)):
            if sealed is None:
                continue
            try:
                value = keyring.decrypt(field, row.id, sealed)
            except (KeyError, ValueError, InvalidTag):  # sealed under a key not here: nothing to hash it with
                continue
            contacts[field].update(keyring.lookup_indexes(f"request.{field}", value))
    refs: dict[str, set[str]] = {}
    for link in tx.session.execute(select(links_t.c.partner_id, links_t.c.customer_ref).where(
            links_t.c.member_id.in_(member_ids), links_t.c.customer_ref.is_not(None))):
        refs.setdefault(link.partner_id, set()).update(
            keyring.lookup_indexes("request.customer_ref", link.customer_ref))
    return RequestHashes(contacts, refs)


def forget_requests_naming(tx: Tx, naming: RequestHashes) -> int:
    """Blank the stored request of every API enrolment (``POST /v1/members``) that holds one of the
    member's hashes (``request_hashes``), whatever it answered: a refused one too (``consent_required``
    at another partner, ``customer_ref_mismatch``, ``customer_ref_taken`` …), which names no member.
    Returns how many. As ``forget_enrolment_requests``, a retry with its Idempotency-Key is then refused
    as a reused key. Enrolment records are searched whole (``LIKE`` on the path and the hashes, then
    checked exactly on the parsed JSON): an erasure is rare, the records are kept a week.

    A record holds the contact's hash in its normalised form since this release; one kept before holds
    the contact as the partner typed it, which cannot be recomputed: unless it answered with the member
    (``forget_enrolment_requests``), it goes with the retention (``idempotency_retention_days``)."""
    contact_hashes = {value for values in naming.contacts.values() for value in values}
    conditions = [records_t.c.request.contains(f'"{value}"', autoescape=True) for value in sorted(contact_hashes)]
    conditions += [and_(records_t.c.partner_id == partner_id,
                        or_(*(records_t.c.request.contains(f'"{value}"', autoescape=True) for value in sorted(values))))
                   for partner_id, values in sorted(naming.refs.items())]
    if not conditions:
        return 0
    session = tx.session
    found = session.execute(select(records_t.c.partner_id, records_t.c.key, records_t.c.request)
                            .where(records_t.c.request.endswith(f'{ENROLMENT_PATH}"}}', autoescape=True),
                                   or_(*conditions))).all()
    blanked = 0
    for row in found:
        request = json.loads(row.request)
        body = request.get("body") if isinstance(request, dict) else None
        if not (isinstance(body, dict) and request.get("method") == "POST"
                and str(request.get("path")).endswith(ENROLMENT_PATH)):
            continue
        if not (any(body.get(field) in values for field, values in naming.contacts.items())
                or body.get("customer_ref") in naming.refs.get(row.partner_id, ())):
            continue
        _blank(session, row, request["path"])
        blanked += 1
    return blanked


def erase_member(tx: Tx, member_id: str, *, keyring: Keyring, reason: str | None = None) -> dict:
    # a network without an entry has nothing to forfeit: such an erasure enters no cycle (it would leave
    # a `cycles` row before the network's first cycle)
    cycle = enter_open_cycle_once_posted(tx)
    journal = Journal(tx, cycle or cycle_date_for(tx.now, tx.settings))
    journal.members = lock_members(tx, [member_id])
    member = journal.members.get(member_id)
    if member is None:
        status = tx.session.execute(select(members_t.c.status).where(members_t.c.id == member_id)).scalar_one_or_none()
        if status == "erased":
            raise MemberErased(f"member {member_id} is already erased")
        raise UnknownMember(f"no member {member_id} (unknown, or merged into another member: erase the survivor)")
    open_holds = count_open_holds(tx, member_id)
    if open_holds:
        raise HoldsOpen(f"member {member_id} has {open_holds} open holds; capture or void them first",
                        open_holds=open_holds)
    if cycle is None and (member.available or member.held):  # the network's first entry committed meanwhile
        enter_open_cycle(tx)
    # timed-out holds the job has not reached yet: released as it would (decision 7), under the member's
    # lock, in this unit; the lots they reserve join the journal with their reservations taken off
    release_lapsed_holds(journal, member_id)
    for lot_id, lot in load_lots(tx, member_ids=[member_id]).items():
        journal.lots.setdefault(lot_id, lot)
    request = {"kind": "erasure", "member_id": member_id}
    entry = forfeit(journal, member, list(journal.lots.values()), request=request)
    if entry is not None:
        entry["result"]["reason"] = "erasure"
    # what was queued about the member (or a duplicate merged into it) and not sent yet is never sent:
    # from here on only this erasure's points.expired and member.erased name it
    cancel_naming(tx, member_id, ERASED)
    journal.flush()  # partners linked to the member hear points.expired, as for any expiry
    session = tx.session
    # duplicates merged into this member keep their contact so that it finds the survivor: erased too
    duplicates = session.execute(select(members_t.c.id).where(members_t.c.merged_into == member_id)).scalars().all()
    # read before the contacts and customer references go: the enrolment records that hold them
    naming = request_hashes(tx, keyring, [member_id, *duplicates])
    # no anniversary either: an erased member has no tier to review, and one left in the review's
    # index range was read and passed over by every later pass of the tier review (migration 0027)
    session.execute(update(members_t).where(members_t.c.id == member_id).values(
        status="erased", erased_at=tx.now, tier_anniversary_at=None, **NO_PERSONAL_DATA))
    session.execute(update(members_t).where(members_t.c.merged_into == member_id).values(**NO_PERSONAL_DATA))
    forget_enrolment_requests(tx, [member_id, *duplicates])
    forget_requests_naming(tx, naming)
    # a partner's own customer reference is personal data too (not sent either: the partner maps the
    # member id to its customer); the link stays, so that a partner's later call for the id answers
    # `member_erased`, and every linked partner hears `member.erased` (GDPR Art. 19), once: queued here
    session.execute(update(links_t).where(links_t.c.member_id == member_id).values(customer_ref=None))
    emit(tx, "member.erased", {"member_id": member_id, "erased_at": instant(tx.now)})
    session.execute(delete(LinkToken.__table__).where(LinkToken.member_id == member_id, LinkToken.used_at.is_(None)))
    record = {"id": new_id("ers"), "member_id": member_id, "entry_id": entry["id"] if entry else None,
              "points_forfeited": entry["points"] if entry else 0, "reason": reason, "erased_at": tx.now}
    session.execute(insert(MemberErasure.__table__).values(**record))
    return {**record, "erased_at": tx.now.isoformat()}
