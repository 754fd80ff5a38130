"""A member withdraws its consent from one partner: that partner's link goes, and the withdrawal is recorded.

A partner's link to a member (``member_links``) is the member's consent that the partner sees and serves
it (shared/members/enrolment.py). Withdrawing it deletes the link row, so every check of a link stops
seeing it with no filter of its own: the partner's reads and writes for the member answer 404
``unknown_member`` (``require_linked``, the posting's links), its transaction listing shows the member id
of its own past entries no more, and events about the member are no longer sent to it. With the row go
the partner's customer_ref of the member, its unused link tokens for the member, its webhook deliveries
about the member still pending (retries: ``cancelled``, never sent; one a worker is sending at that
moment may still arrive), and the contact and customer_ref hashes its kept enrolment requests hold next
to the member's id (a retry of such an Idempotency-Key is refused as reused, as after an erasure). The
member's points, lots and ledger history are the network's and stay as they are, and so do the partner's
own entries: it may still reverse them, capture or void its holds by id, and is then answered ``balance``
null (the member's balance is no longer its to see). A posting or link token of the partner's waiting for
the member's lock meanwhile reads the link again once it holds it, and finds it gone
(shared/ledger/posting.py, shared/members/enrolment.py).

Linking again needs consent again: an enrolment with the member's contact answers ``consent_required``,
a link token minted by another partner the member is linked to links it.

Refused while the partner holds an open hold for the member (409 ``holds_open``): capture or void it
first. Recorded in ``member_unlinks`` (who asked, when, the operator's reference), from which reports of
past periods count the members linked to the partner then (``link_periods``). The partner hears
``member.unlinked`` (the member id and the time), queued in the same transaction, before the link goes.
"""

from __future__ import annotations

from sqlalchemy import and_, delete, func, insert, or_, select, union_all

from shared.db.database import Tx
from shared.db.types import new_id
from shared.errors import HoldsOpen, MemberErased, UnknownMember
from shared.members.erasure import forget_enrolment_requests
from shared.models import Hold, LinkToken, Member, MemberLink, MemberUnlink
from shared.partners.contracts import require_partner
from shared.webhooks import emit
from shared.webhooks.outbox import UNLINKED, cancel_naming, instant

members_t, links_t, unlinks_t = Member.__table__, MemberLink.__table__, MemberUnlink.__table__
REQUESTERS = ("partner", "operator")


def open_holds_of(tx: Tx, partner_id: str, member_id: str) -> int:
    """The partner's holds for the member still open and not timed out (a hold past its ``expires_at``
    can be neither captured nor voided: the hold-timeout job releases it, link or none)."""
    return tx.session.execute(select(func.count()).select_from(Hold.__table__).where(
        Hold.partner_id == partner_id, Hold.member_id == member_id, Hold.status == "open",
        Hold.expires_at > tx.now)).scalar_one()


def linked_members(tx: Tx, partner_id: str, member_ids: set[str]) -> set[str]:
    """Which of ``member_ids`` the partner is linked to now, in one query: the members it may see. The
    others (an unlinked member, a referrer linked elsewhere, a survivor another partner's) are not named
    to it: ``member_id`` null in its transaction list and answers, no ``leaf_data`` in a proof. A duplicate
    merged into another member counts as linked through the survivor, which holds its links."""
    if not member_ids:
        return set()
    return set(tx.session.execute(
        select(Member.id).join(MemberLink, and_(MemberLink.partner_id == partner_id,
                                                MemberLink.member_id == func.coalesce(Member.merged_into, Member.id)))
        .where(Member.id.in_(member_ids))).scalars())


def unlink(tx: Tx, partner_id: str, member_id: str, *, requested_by: str, reason: str | None = None) -> dict:
    """Withdraw the member's consent from ``partner_id``: its link goes (see the module's docstring).

    ``UnknownMember`` for an id that is not a member linked to the partner (unknown, merged into another
    member, or linked to other partners only: the same answer, as for any member the partner cannot see);
    ``MemberErased`` for an erased member linked to it (an erasure keeps the links, so that the id answers
    so); ``HoldsOpen`` while the partner holds an open hold for the member."""
    if requested_by not in REQUESTERS:
        raise ValueError(f"requested_by is one of {REQUESTERS}")
    require_partner(tx, partner_id)
    session = tx.session
    # the member's row FOR UPDATE: a posting (which locks it before it holds points), an enrolment or a
    # link token (FOR SHARE), a merge and an erasure (FOR UPDATE) run before or after this, not across it
    query = select(members_t.c.status, members_t.c.merged_into).where(members_t.c.id == member_id)
    if tx.is_postgres:
        query = query.with_for_update()
    member = session.execute(query).first()
    link = session.execute(select(links_t.c.linked_at).where(
        links_t.c.partner_id == partner_id, links_t.c.member_id == member_id)).first()
    if member is None or member.merged_into is not None or link is None:
        raise UnknownMember(f"no member {member_id} linked to partner {partner_id}")
    if member.status == "erased":
        raise MemberErased(f"member {member_id} was erased; its personal data is gone already")
    holds = open_holds_of(tx, partner_id, member_id)
    if holds:
        raise HoldsOpen(f"partner {partner_id} holds {holds} open hold(s) for member {member_id}; capture or "
                        "void them first", open_holds=holds)
    # queued while the link is there (an event naming a member goes to the partners linked to it), to
    # this partner alone; nothing personal: the id and the time
    unlinked = emit(tx, "member.unlinked", {"member_id": member_id, "unlinked_at": instant(tx.now)},
                    partner_ids=[partner_id])
    # the partner may have enrolled the person as a duplicate merged into this member since (its record
    # answers the duplicate's id): those go too, as at an erasure
    duplicates = session.execute(select(members_t.c.id).where(members_t.c.merged_into == member_id)).scalars().all()
    forget_enrolment_requests(tx, [member_id, *duplicates], partner_ids=[partner_id])
    session.execute(delete(links_t).where(links_t.c.partner_id == partner_id, links_t.c.member_id == member_id))
    # after the link's deletion: a replay that read the link (FOR SHARE) is waited for, and what it
    # queued again is cancelled here with the rest; member.unlinked is the last event the partner gets
    cancel_naming(tx, member_id, UNLINKED, partner_ids=[partner_id], keep=unlinked)
    session.execute(delete(LinkToken.__table__).where(LinkToken.member_id == member_id,
                                                       LinkToken.issued_by == partner_id, LinkToken.used_at.is_(None)))
    record = {"id": new_id("unl"), "partner_id": partner_id, "member_id": member_id, "linked_at": link.linked_at,
              "unlinked_at": tx.now, "requested_by": requested_by, "reason": reason}
    session.execute(insert(unlinks_t).values(**record))
    return {**record, "linked": False, "linked_at": link.linked_at.isoformat(), "unlinked_at": tx.now.isoformat()}


def link_periods(partner_id: str):
    """Every link the partner has had, as ``(member_id, linked_at, unlinked_at)`` rows: the links there
    now (``unlinked_at`` NULL) and those withdrawn since (``member_unlinks``). A report of a past period
    counts the members linked to the partner then from these, not from the links left now. An erased
    member's link, kept so that the partner is answered ``member_erased``, ended at its erasure
    (``members.erased_at``; an erased member cannot withdraw, so its withdrawals are all before)."""
    return union_all(
        select(links_t.c.member_id.label("member_id"), links_t.c.linked_at.label("linked_at"),
               members_t.c.erased_at.label("unlinked_at"))
        .join_from(links_t, members_t, members_t.c.id == links_t.c.member_id).where(links_t.c.partner_id == partner_id),
        select(unlinks_t.c.member_id, unlinks_t.c.linked_at, unlinks_t.c.unlinked_at)
        .where(unlinks_t.c.partner_id == partner_id),
    ).subquery("link_periods")


def linked_at(links, instant):
    """Whether a row of ``link_periods`` had the member linked at ``instant``: linked before it, and not
    withdrawn by then."""
    return and_(links.c.linked_at < instant, or_(links.c.unlinked_at.is_(None), links.c.unlinked_at >= instant))
