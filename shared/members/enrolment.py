"""Enrolment and consent: members are network-wide, partners link to them with consent."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update

from shared.db.advisory import lock_until_commit
from shared.db.database import Tx
from shared.db.types import new_id
from shared.errors import (
    Conflict, ConsentRequired, CustomerRefTaken, InvalidContact, InvalidLinkToken, MemberErased, UnknownMember,
    ValidationFailed,
)
from shared.members.privacy import Keyring, normalise_email, normalise_phone
from shared.models import Account, IdempotencyRecord, LinkToken, Member, MemberLink
from shared.partners.contracts import require_partner

LINK_TOKEN_TTL = timedelta(minutes=10)
members_t, links_t, tokens_t = Member.__table__, MemberLink.__table__, LinkToken.__table__
records_t = IdempotencyRecord.__table__
# The fields of an API enrolment (POST /v1/members) its Idempotency-Key record keeps only as keyed
# hashes: the blind index of ``request.<field>`` under the active personal-data key, ``<key id>:<hex>``.
REQUEST_HASHED = ("phone", "email", "name", "customer_ref", "link_token")
ENROLMENT_PATH, LINK_TOKENS_SUFFIX = "/v1/members", "/link-tokens"


def normalised_contact(field: str, value: str, default_region: str) -> str:
    """``value`` of an enrolment's ``field`` as the member's blind index holds it: a phone in E.164, an
    email normalised; any other field, or a contact that cannot be read, as it is."""
    try:
        if field == "phone":
            return normalise_phone(value, default_region)
        if field == "email":
            return normalise_email(value)
    except InvalidContact:
        pass
    return value


class ContactConflict(Conflict):
    code, title = "contact_conflict", "The phone number and the email address belong to two different members"


def _find_by_contact(tx: Tx, keyring: Keyring, phone: str | None = None, email: str | None = None) -> str | None:
    conditions = []
    if phone:
        conditions.append(members_t.c.phone_bidx.in_(keyring.lookup_indexes("phone", phone)))
    if email:
        conditions.append(members_t.c.email_bidx.in_(keyring.lookup_indexes("email", email)))
    if not conditions:
        return None
    # a duplicate merged into another member is found as its survivor (shared/programme/merge.py)
    found = tx.session.execute(select(func.coalesce(members_t.c.merged_into, members_t.c.id)).distinct()
                               .where(or_(*conditions)).limit(2)).scalars().all()
    if len(found) > 1:  # the phone is one member's, the e-mail another's: neither is picked
        raise ContactConflict("this phone number belongs to one member and this email address to another; "
                              "enrol with one of them, or ask the network's operators to merge the two members")
    return found[0] if found else None


def _lock_contacts(tx: Tx, keyring: Keyring, phone: str | None, email: str | None) -> None:
    """Serialise enrolments of the same person, whatever key each process indexes under.

    The unique blind-index columns only catch twins that index under the same key: during a key
    rotation two processes may have different active keys, both miss the person and insert it under
    different index values. So, before looking the person up, take an advisory lock (PostgreSQL,
    until commit) on each index value of the contact under every key this process knows, in one
    sorted order (no deadlock). Two processes whose keyrings share a key (which the two-phase
    rotation guarantees, docs/security.md) share a lock: the second waits, then finds the first's
    member. SQLite needs nothing: a writing unit holds the database's one write lock from its
    BEGIN IMMEDIATE, so enrolments run one after another anyway."""
    if not tx.is_postgres:
        return
    values = set()
    if phone:
        values.update(keyring.lookup_indexes("phone", phone))
    if email:
        values.update(keyring.lookup_indexes("email", email))
    for value in sorted(values):
        lock_until_commit(tx.session, "member-contact", value)


def find_member(tx: Tx, keyring: Keyring, *, phone: str | None = None, email: str | None = None) -> str | None:
    """Look a member up by phone or email through the blind index (never by decrypting). Given both,
    and they are two members' (``ContactConflict``), neither is answered."""
    return _find_by_contact(
        tx, keyring,
        normalise_phone(phone, tx.settings.default_region) if phone else None,
        normalise_email(email) if email else None,
    )


class CustomerRefMismatch(Conflict):
    code, title = "customer_ref_mismatch", "The member is already linked to you under another customer id"


def _link(tx: Tx, partner_id: str, member_id: str, customer_ref: str | None) -> None:
    """Link the member to the partner, or check an existing link against ``customer_ref``.

    A partner's customer_ref names one member (unique in the database too), and a member has at most
    one customer_ref of each partner: an existing link without one takes the one given; another than
    its own is refused rather than silently kept or replaced."""
    exists = tx.session.execute(select(links_t.c.customer_ref).where(
        links_t.c.partner_id == partner_id, links_t.c.member_id == member_id)).first()
    if customer_ref is None or (exists is not None and exists.customer_ref == customer_ref):
        if exists is None:
            tx.session.execute(insert(links_t).values(partner_id=partner_id, member_id=member_id,
                                                      customer_ref=None, linked_at=tx.now))
        return
    taken = tx.session.execute(select(links_t.c.member_id).where(
        links_t.c.partner_id == partner_id, links_t.c.customer_ref == customer_ref)).first()
    if taken is not None:
        raise CustomerRefTaken("this customer_ref of yours is already linked to another member")
    if exists is None:
        tx.session.execute(insert(links_t).values(partner_id=partner_id, member_id=member_id,
                                                  customer_ref=customer_ref, linked_at=tx.now))
        return
    if exists.customer_ref is None:  # only while it has none: a twin may have given it one meanwhile
        set_now = tx.session.execute(update(links_t).where(
            links_t.c.partner_id == partner_id, links_t.c.member_id == member_id, links_t.c.customer_ref.is_(None))
            .values(customer_ref=customer_ref)).rowcount
        if set_now or tx.session.execute(select(links_t.c.customer_ref).where(
                links_t.c.partner_id == partner_id, links_t.c.member_id == member_id)).scalar() == customer_ref:
            return
    # the member's own customer_ref is not named: refusals are stored with the Idempotency-Key
    raise CustomerRefMismatch("this member is already linked to you under another customer_ref of yours")


def enrol(tx: Tx, keyring: Keyring, partner_id: str, *, phone: str | None = None, email: str | None = None,
          name: str | None = None, customer_ref: str | None = None, link_token: str | None = None,
          referrer_member_id: str | None = None) -> dict:
    """Enrol a new member and link it to the partner, or link an existing one with its consent token.

    ``referrer_member_id``: the member who recommended a new member (see shared/programme/referrals.py).
    """
    outcome = _enrol(tx, keyring, partner_id, phone=phone, email=email, name=name, customer_ref=customer_ref,
                     link_token=link_token)
    if referrer_member_id is not None:
        from shared.programme.referrals import record_referral

        record_referral(tx, outcome["member_id"], referrer_member_id, partner_id, created=outcome["created"])
    return outcome


def _hold_active(tx: Tx, member_id: str | None) -> bool:
    """Hold the member's row until commit (PostgreSQL ``FOR SHARE``) if it is still active and not merged.

    An enrolment that answers with an existing member holds it so: an erasure (or a merge), which takes
    the row ``FOR UPDATE``, then either commits before — and this finds the member no more — or waits
    until the enrolment committed, and then blanks the enrolment's Idempotency-Key record with the
    others (``forget_enrolment_requests``). Unheld, an erasure could commit between the enrolment's
    look-up and its commit, and the enrolment would store the keyed hashes of the contact beside the
    erased id after the erasure blanked such records. SQLite's one writer runs them one after the other."""
    if member_id is None:
        return False
    query = select(members_t.c.id).where(members_t.c.id == member_id, members_t.c.status == "active",
                                         members_t.c.merged_into.is_(None))
    if tx.is_postgres:
        query = query.with_for_update(read=True)
    return tx.session.execute(query).first() is not None


def _enrol(tx: Tx, keyring: Keyring, partner_id: str, *, phone: str | None, email: str | None, name: str | None,
           customer_ref: str | None, link_token: str | None) -> dict:
    require_partner(tx, partner_id)
    if customer_ref is not None and not 0 < len(customer_ref) <= 128:
        raise ValidationFailed("customer_ref must be 1 to 128 characters",
                               errors=[{"field": "customer_ref", "message": "must be 1 to 128 characters"}])
    if link_token:
        # the token's member held first (an erasure or merge meanwhile deletes its unused tokens)
        _hold_active(tx, tx.session.execute(select(tokens_t.c.member_id).where(
            tokens_t.c.token_hash == hashlib.sha256(link_token.encode()).hexdigest())).scalar_one_or_none())
        member_id = redeem_link_token(tx, partner_id, link_token)
        _link(tx, partner_id, member_id, customer_ref)
        return {"member_id": member_id, "created": False, "linked": True}
    if not phone and not email:
        raise InvalidContact("a member needs a phone number or an email address")
    phone_e164 = normalise_phone(phone, tx.settings.default_region) if phone else None
    email_norm = normalise_email(email) if email else None
    _lock_contacts(tx, keyring, phone_e164, email_norm)
    existing = _find_by_contact(tx, keyring, phone_e164, email_norm)
    while existing is not None and not _hold_active(tx, existing):
        # erased (its contact is gone: not found any more) or merged (found as its survivor) since it
        # was found: looked up again, as the same request after that erasure or merge would
        again = _find_by_contact(tx, keyring, phone_e164, email_norm)
        if again == existing:  # found, yet neither active nor merged into another: never enrolled twice
            raise UnknownMember(f"the member of this contact, {existing}, is not active")
        existing = again
    if existing is not None:
        linked = tx.session.execute(select(links_t.c.member_id).where(
            links_t.c.partner_id == partner_id, links_t.c.member_id == existing)).first()
        if linked is None:
            raise ConsentRequired("this phone or email belongs to a member enrolled elsewhere; "
                                  "present the member's link token to link it")
        _link(tx, partner_id, existing, customer_ref)
        _add_missing_contact(tx, keyring, existing, phone_e164, email_norm)
        return {"member_id": existing, "created": False, "linked": True}
    member_id = new_id("mem")
    tx.session.execute(insert(members_t).values(
        id=member_id, status="active", available=0, held=0, enrolled_by=partner_id, created_at=tx.now,
        phone_ct=keyring.encrypt("phone", member_id, phone_e164) if phone_e164 else None,
        phone_bidx=keyring.blind_index("phone", phone_e164) if phone_e164 else None,
        email_ct=keyring.encrypt("email", member_id, email_norm) if email_norm else None,
        email_bidx=keyring.blind_index("email", email_norm) if email_norm else None,
        name_ct=keyring.encrypt("name", member_id, name) if name else None,
    ))
    tx.session.execute(insert(Account.__table__), [
        {"id": f"member:{member_id}", "kind": "member"},
        {"id": f"member:{member_id}:held", "kind": "member_held"},
    ])
    _link(tx, partner_id, member_id, customer_ref)
    return {"member_id": member_id, "created": True, "linked": True}


def _add_missing_contact(tx: Tx, keyring: Keyring, member_id: str, phone: str | None, email: str | None) -> None:
    """Record on a member found by one contact the other the enrolment gave, if it has none of that kind: the
    person gave it at the till, and dropped, it would enrol them a second time the next time they give only
    it. Both contacts are locked (``_lock_contacts``); one that any member's row holds, under any key (a
    duplicate merged into this member keeps its own), is left where it is. A member's own contact of a kind
    is kept, never replaced."""
    row = tx.session.execute(select(members_t.c.phone_bidx, members_t.c.email_bidx)
                             .where(members_t.c.id == member_id)).one()
    values = {}
    for field, value, held in (("phone", phone, row.phone_bidx), ("email", email, row.email_bidx)):
        if value and held is None and _find_by_contact(tx, keyring, **{field: value}) is None:
            values |= {f"{field}_ct": keyring.encrypt(field, member_id, value),
                       f"{field}_bidx": keyring.blind_index(field, value)}
    if values:
        tx.session.execute(update(members_t).where(members_t.c.id == member_id).values(**values))


def require_linked(tx: Tx, partner_id: str, member_id: str, *, erased: bool = False) -> None:
    """The member is active and linked to the partner, else ``UnknownMember`` — or, with ``erased``, for an
    erased member linked to it ``MemberErased`` (an erasure keeps the links so that a write naming the id
    answers so; a read, ``GET``, answers 404)."""
    row = tx.session.execute(select(members_t.c.status).join(links_t, members_t.c.id == links_t.c.member_id)
                             .where(links_t.c.partner_id == partner_id, links_t.c.member_id == member_id,
                                    members_t.c.merged_into.is_(None))).first()
    if erased and row is not None and row.status == "erased":
        raise MemberErased(f"member {member_id} was erased; its personal data is gone already")
    if row is None or row.status != "active":
        raise UnknownMember(f"no member {member_id}")


def mint_link_token(tx: Tx, partner_id: str, member_id: str) -> dict:
    """A short-lived, single-use token the member shows another partner (as a QR code) to consent."""
    if tx.is_postgres:
        # Held until commit, taken before the link is read: an erasure, a merge or an unlink in flight
        # (they lock the member FOR UPDATE and delete its unused tokens) is waited for, and a token minted
        # meanwhile must not outlive them. The lock's statement sees an erasure or a merge (they update
        # the row); the unlink deletes only the link, which a statement begun before its commit still
        # sees (READ COMMITTED), so the link is read after the lock, in a statement of its own.
        still = tx.session.execute(select(members_t.c.id).where(
            members_t.c.id == member_id, members_t.c.status == "active", members_t.c.merged_into.is_(None))
            .with_for_update(read=True, key_share=True)).first()
        if still is None:
            require_linked(tx, partner_id, member_id, erased=True)  # erased (409) or unknown: as the link says
            raise UnknownMember(f"no member {member_id}")
    require_linked(tx, partner_id, member_id, erased=True)
    token = secrets.token_urlsafe(24)
    expires_at = tx.now + LINK_TOKEN_TTL
    tx.session.execute(insert(tokens_t).values(
        token_hash=hashlib.sha256(token.encode()).hexdigest(), member_id=member_id, issued_by=partner_id,
        expires_at=expires_at))
    return {"link_token": token, "expires_at": expires_at.isoformat()}


def redeem_link_token(tx: Tx, partner_id: str, token: str) -> str:
    digest = hashlib.sha256(token.encode()).hexdigest()
    used = tx.session.execute(
        update(tokens_t).where(tokens_t.c.token_hash == digest, tokens_t.c.used_at.is_(None),
                               tokens_t.c.expires_at > tx.now)
        .values(used_at=tx.now, used_by=partner_id).returning(tokens_t.c.member_id)
    ).scalar_one_or_none()
    if used is None:
        raise InvalidLinkToken("the link token is unknown, already used or expired")
    return used


def request_key_id(request: Any) -> str | None:
    """The personal-data key an enrolment request kept for an Idempotency-Key was hashed under (the key
    a retry is compared under), or None: no hashed field (an erased record, another route's request)."""
    body = request.get("body") if isinstance(request, dict) else None
    if not isinstance(body, dict):
        return None
    found = {value.rpartition(":")[0] for field in REQUEST_HASHED
             if isinstance(value := body.get(field), str) and ":" in value}
    return found.pop() if len(found) == 1 else None


def kept_under_key(tx: Tx, key_id: str) -> tuple[int, datetime | None]:
    """Idempotency-Key records within their retention that still need the personal-data key ``key_id``:
    API enrolments whose kept request was hashed under it (a retry is compared under it; a hash cannot
    be recomputed under another key without the contact, which is not kept) and minted link tokens whose
    kept answer is sealed under it (a retry shows the token again). Returns how many, and when the newest
    was kept: ``pointsnet keys retire`` refuses until none is left, one retention after that."""
    cutoff = tx.now - timedelta(days=tx.settings.idempotency_retention_days)
    quoted = json.dumps(key_id)[1:-1]  # the key id as it appears inside the stored JSON
    hashed = and_(records_t.c.request.endswith(f'{ENROLMENT_PATH}"}}', autoescape=True),
                  records_t.c.request.contains(f'"{quoted}:', autoescape=True))
    sealed = and_(records_t.c.request.endswith(f'{LINK_TOKENS_SUFFIX}"}}', autoescape=True),
                  records_t.c.response.contains(f'"v1.{quoted}.', autoescape=True))
    count, newest = 0, None
    for row in tx.session.execute(select(records_t.c.request, records_t.c.response, records_t.c.created_at)
                                  .where(records_t.c.created_at >= cutoff, or_(hashed, sealed))):
        request, response = json.loads(row.request), json.loads(row.response)
        token = response.get("link_token") if isinstance(response, dict) else None
        if request_key_id(request) == key_id or (isinstance(token, str) and token.startswith(f"v1.{key_id}.")):
            count += 1
            newest = row.created_at if newest is None else max(newest, row.created_at)
    return count, newest
