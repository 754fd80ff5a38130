"""Merging a duplicate member into a survivor (an operator's decision), keeping the ledger verifiable.

Entries are history and stay with the member they were posted for. What the duplicate still
has moves: its balance by one ``adjustment`` entry (member:DUP → member:SURV, and the held
account likewise), its lots and holds by owner (so provenance, expiry and reversals follow
the points), its partner links (a partner linked to both keeps the survivor's, from the earlier
of the two ``linked_at``), its tier and status history, its campaign and activity awards (so
per-member caps count both), its expiry reminders (so the survivor is not told again of points
it was told of; on a (date, days) both were reminded of, the survivor's is kept) and its referrals
(see ``_move_referrals``). The daily velocity limits find its entries through ``merged_into``
(``limits._day_entries_query``). The duplicate is marked ``merged_into`` the survivor: it is never
locked again, so nothing can post to it, reversals of its old entries act on the survivor, and its
phone or email finds the survivor. Every partner linked to either member (all of them linked to the
survivor now) is told by a ``member.merged`` webhook queued in the same transaction.
"""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select, update

from shared.db.database import Tx
from shared.db.types import new_id
from shared.errors import UnknownMember, ValidationFailed
from shared.ledger.cycles import cycle_date_for, enter_open_cycle, enter_open_cycle_once_posted
from shared.ledger.due import load_due
from shared.ledger.journal import Journal
from shared.ledger.state import lock_members
from shared.models import (
    ActivityAward, CampaignAward, ExpiryReminder, Hold, LinkToken, Lot, Member, MemberLink, MemberMerge,
    MemberStatusHistory, MemberTierHistory, Referral, ReferralBonus,
)
from shared.programme.tiers import MemberTiers, add_months
from shared.webhooks import emit

members_t, links_t, reminders_t = Member.__table__, MemberLink.__table__, ExpiryReminder.__table__
referrals_t, bonuses_t = Referral.__table__, ReferralBonus.__table__


def merge_members(tx: Tx, survivor_id: str, duplicate_id: str, *, reason: str | None = None) -> dict:
    if survivor_id == duplicate_id:
        raise ValidationFailed("a member cannot be merged into itself")
    # a network without an entry has no points to move: such a merge enters no cycle (it would leave a
    # `cycles` row before the network's first cycle)
    cycle = enter_open_cycle_once_posted(tx)
    journal = Journal(tx, cycle or cycle_date_for(tx.now, tx.settings))
    journal.members = lock_members(tx, [survivor_id, duplicate_id])  # id order, like every writer
    for member_id in (survivor_id, duplicate_id):
        if member_id not in journal.members:
            raise UnknownMember(f"no member {member_id} (unknown, erased or already merged)")
    survivor, duplicate = journal.members[survivor_id], journal.members[duplicate_id]
    available, held = duplicate.available, duplicate.held
    entry_id = None
    if available or held:
        if cycle is None:  # the network's first entry committed meanwhile, for the duplicate
            enter_open_cycle(tx)
        request = {"kind": "merge", "survivor": survivor_id, "duplicate": duplicate_id}
        entry = journal.entry("adjustment", available + held, member_id=survivor_id, request=request)
        journal.transfer(entry, f"member:{duplicate_id}", f"member:{survivor_id}", available)
        journal.transfer(entry, f"member:{duplicate_id}:held", f"member:{survivor_id}:held", held)
        duplicate.change(available=-available, held=-held)
        survivor.change(available=available, held=held)
        entry["result"] = {**request, "entry_id": entry["id"], "available": available, "held": held,
                           "balance": survivor.balance()}
        entry_id = entry["id"]
    journal.flush()
    session = tx.session
    # the lots' leaves keep naming the member they were issued to (merged_from), whatever member holds them
    lots = session.execute(update(Lot.__table__).where(Lot.member_id == duplicate_id)
                           .values(member_id=survivor_id, merged_from=func.coalesce(Lot.merged_from, duplicate_id))
                           ).rowcount
    holds = session.execute(update(Hold.__table__).where(Hold.member_id == duplicate_id)
                            .values(member_id=survivor_id)).rowcount
    # a partner linked to both keeps the survivor's link from the earlier of the two
    # linked_at: the person was linked to the partner since then (the reports' past periods, the export)
    theirs = links_t.alias("theirs")
    earlier = select(theirs.c.linked_at).where(theirs.c.member_id == duplicate_id,
                                                theirs.c.partner_id == links_t.c.partner_id,
                                                theirs.c.linked_at < links_t.c.linked_at).scalar_subquery()
    session.execute(update(links_t).where(links_t.c.member_id == survivor_id, earlier.is_not(None))
                    .values(linked_at=earlier))
    shared_partners = select(links_t.c.partner_id).where(links_t.c.member_id == survivor_id).scalar_subquery()
    # where the survivor's link has no customer_ref, the duplicate's is kept (that partner's own id of the
    # person, unique per partner: only the duplicate's link, deleted first, held it)
    refs = session.execute(select(links_t.c.partner_id, links_t.c.customer_ref).where(
        links_t.c.member_id == duplicate_id, links_t.c.partner_id.in_(shared_partners),
        links_t.c.customer_ref.is_not(None))).all()
    session.execute(delete(links_t).where(links_t.c.member_id == duplicate_id,
                                          links_t.c.partner_id.in_(shared_partners)))
    for partner_id, customer_ref in refs:
        session.execute(update(links_t).where(links_t.c.member_id == survivor_id, links_t.c.partner_id == partner_id,
                                              links_t.c.customer_ref.is_(None)).values(customer_ref=customer_ref))
    links = session.execute(update(links_t).where(links_t.c.member_id == duplicate_id)
                            .values(member_id=survivor_id)).rowcount
    session.execute(delete(LinkToken.__table__).where(LinkToken.member_id == duplicate_id,
                                                      LinkToken.used_at.is_(None)))
    # awards: per-member campaign and activity caps count both
    for history in (MemberTierHistory, MemberStatusHistory, CampaignAward, ActivityAward):
        session.execute(update(history.__table__).where(history.member_id == duplicate_id)
                        .values(member_id=survivor_id))
    # reminders made (member, date, days) once: where both were told, the survivor's is kept
    kept = reminders_t.alias("kept")
    session.execute(delete(reminders_t).where(reminders_t.c.member_id == duplicate_id, select(kept.c.id).where(
        kept.c.member_id == survivor_id, kept.c.expires_on == reminders_t.c.expires_on,
        kept.c.days_before == reminders_t.c.days_before).exists()))
    session.execute(update(reminders_t).where(reminders_t.c.member_id == duplicate_id).values(member_id=survivor_id))
    _move_referrals(tx, survivor_id, duplicate_id)
    # earlier duplicates of the duplicate now point at the survivor too: one hop, always
    session.execute(update(members_t).where(members_t.c.merged_into == duplicate_id).values(merged_into=survivor_id))
    row = session.execute(select(members_t.c.tier, members_t.c.tier_since, members_t.c.tier_anniversary_at)
                          .where(members_t.c.id == duplicate_id)).one()
    session.execute(update(members_t).where(members_t.c.id == duplicate_id)
                    .values(merged_into=survivor_id, tier=None, tier_since=None, tier_anniversary_at=None))
    _keep_the_higher_tier(tx, survivor_id, row)
    record = {"id": new_id("mrg"), "survivor_id": survivor_id, "duplicate_id": duplicate_id, "entry_id": entry_id,
              "available": available, "held": held, "lots": lots, "holds": holds, "links": links,
              "reason": reason, "at": tx.now}
    session.execute(insert(MemberMerge.__table__).values(**record))
    # the balance sent and answered is the one a spend now would find: the survivor's lots and holds,
    # the duplicate's among them now, past expiry or timeout count as expired and released
    load_due(journal, [survivor_id])
    # the links have moved: the survivor's partners are those of either member
    emit(tx, "member.merged", {"member_id": survivor_id, "from": duplicate_id, "into": survivor_id,
                               "merge_id": record["id"], "points": available, "held_points": held,
                               "balance": survivor.balance(), "merged_at": tx.now.isoformat().replace("+00:00", "Z")})
    return {**record, "at": tx.now.isoformat(), "balance": survivor.balance()}


def _move_referrals(tx: Tx, survivor_id: str, duplicate_id: str) -> None:
    """Referrals name the survivor instead of the duplicate, so that its bonuses are paid.

    * As referrer: the duplicate's referees' referrals name the survivor (a bonus not yet paid goes
      to it). Bonuses already paid stay as they were posted (``referral_bonuses`` is history).
    * As referee, one person earns one referrer one bonus: if any record of the person (the
      survivor, the duplicate, or an earlier duplicate merged into either) has earned its referrer
      a bonus already, the survivor's pending referral is dropped and the duplicate's pending one
      stays with the duplicate (never paid: nothing posts to a merged member). Otherwise (at most
      one referrer per member) the duplicate's pending referral moves to the survivor if the
      survivor has none; if the survivor has one, the survivor's is kept and the duplicate's stays.
    * A referral between the two records (one person referring itself) is never paid: the
      duplicate's naming the survivor stays as it was; the survivor's naming the duplicate stays
      too, unless the duplicate has a pending referral of its own, which then replaces it.

    Earlier duplicates are never locked again (nothing posts for them), and the survivor's and the
    duplicate's own bonuses are serialised by their locks, held here: what is read is settled.
    """
    session = tx.session
    session.execute(update(referrals_t).where(referrals_t.c.referrer_member_id == duplicate_id,
                                              referrals_t.c.referee_member_id != survivor_id)
                    .values(referrer_member_id=survivor_id))
    person = [survivor_id, duplicate_id]
    # earlier duplicates still name the survivor or the duplicate (re-pointed one hop after this)
    earlier = select(members_t.c.id).where(members_t.c.merged_into.in_(person))
    paid = session.execute(select(bonuses_t.c.referee_member_id).where(
        bonuses_t.c.referee_member_id.in_(person) | bonuses_t.c.referee_member_id.in_(earlier)).limit(1)).first()
    if paid is not None:
        # the person has earned a referrer its bonus already: nothing pending stays with the survivor,
        # nothing moves to it (a paid referral of the survivor has its bonus row: it is not pending)
        session.execute(delete(referrals_t).where(referrals_t.c.referee_member_id == survivor_id,
                                                  ~select(bonuses_t.c.referee_member_id).where(
                                                      bonuses_t.c.referee_member_id == survivor_id).exists()))
        return
    rows = {row.referee_member_id: row for row in session.execute(
        select(referrals_t.c.referee_member_id, referrals_t.c.referrer_member_id)
        .where(referrals_t.c.referee_member_id.in_(person)))}
    theirs, ours = rows.get(duplicate_id), rows.get(survivor_id)
    if theirs is None or theirs.referrer_member_id == survivor_id:
        return
    if ours is not None and ours.referrer_member_id == duplicate_id:
        # the survivor "referred" by its own duplicate: no referral, and no bar to the duplicate's
        session.execute(delete(referrals_t).where(referrals_t.c.referee_member_id == survivor_id))
        ours = None
    if ours is None:
        session.execute(update(referrals_t).where(referrals_t.c.referee_member_id == duplicate_id)
                        .values(referee_member_id=survivor_id))


def _keep_the_higher_tier(tx: Tx, survivor_id: str, duplicate) -> None:
    """The survivor keeps the higher of the two tiers, or what the joint qualifying points reach. A tier
    the duplicate holds already, reached again by the joint points, keeps the duplicate's dates (the person
    reached it then, and its review is that anniversary's, programme.md): only a tier above both records'
    is reached at the merge."""
    config = tx.settings.tiers
    if not config.enabled:
        return
    tiers = MemberTiers(tx)
    tiers.load([survivor_id])  # qualifying points now include the duplicate's earns
    state = tiers.states[survivor_id]
    reached = config.qualified(state.qualifying)
    if config.rank(duplicate.tier) > config.rank(state.tier) and config.rank(duplicate.tier) >= config.rank(reached):
        tiers.change(state, config.name(duplicate.tier), "merge", since=duplicate.tier_since,
                      anniversary=duplicate.tier_anniversary_at)
    elif config.rank(reached) > config.rank(state.tier):
        tiers.change(state, reached, "merge", since=tx.now, anniversary=add_months(tx.settings, tx.now, 12))
    tiers.flush()
