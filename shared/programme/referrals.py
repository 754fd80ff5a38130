"""Referrals: a member enrolled with a referrer earns the referrer a bonus on its first qualifying earn.

* The programme is data in the earn rules: the earning partner's ``referral`` section, else the
  network's. A qualifying earn is a purchase earn (not an activity) of at least ``min_spend``.
* The bonus is posted in the same unit as the qualifying earn, exactly once per referee: the
  referee's row lock serialises its earns, and the ``referral_bonuses`` primary key (the referee)
  refuses a second bonus at the database even if that ever failed.
* Funding follows the ledger's rule: partner-funded bonuses are the earning partner's lot (issuance
  fee as for any earn); network-funded bonuses are their own lot from ``network:promotions``.
* Reversing the qualifying earn does not claw the bonus back (see docs/earn-rules.md).
* A referrer id of a duplicate merged into another member names the survivor.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import insert, select

from shared.alerts import raise_alert
from shared.db.database import Tx
from shared.errors import UnknownMember, ValidationFailed
from shared.ledger.events import Event
from shared.ledger.rules import issuance_lines
from shared.ledger.state import chunks
from shared.models import Member, Referral, ReferralBonus
from shared.rules.document import Referral as ReferralRules

if TYPE_CHECKING:  # pragma: no cover
    from shared.ledger.posting import Posting

referrals_t, bonuses_t, members_t = Referral.__table__, ReferralBonus.__table__, Member.__table__


def record_referral(tx: Tx, referee_id: str, referrer_id: str, partner_id: str, *, created: bool) -> None:
    """Record who referred a member at its enrolment (only a new member can be referred)."""
    named = referrer_id
    if not created:
        existing = tx.session.execute(select(referrals_t.c.referrer_member_id).where(
            referrals_t.c.referee_member_id == referee_id)).scalar_one_or_none()
        # the same enrolment again: the referrer as named, or the survivor it names, even if erased since
        if existing is not None and (existing == named or existing == getattr(_named(tx, named), "id", None)):
            return
        raise ValidationFailed("a referrer can only be given when a new member is enrolled",
                               errors=[{"field": "referrer_member_id", "message": "member already enrolled"}])
    referrer_id = _referrer(tx, named)
    if referrer_id == referee_id:
        raise ValidationFailed("a member cannot refer itself",
                               errors=[{"field": "referrer_member_id", "message": "the member itself"}])
    if referrer_id is None:
        raise UnknownMember(f"no referrer member {named}")
    tx.session.execute(insert(referrals_t).values(referee_member_id=referee_id, referrer_member_id=referrer_id,
                                                  partner_id=partner_id, created_at=tx.now))


def _named(tx: Tx, member_id: str):
    """The member row a referral names, whatever its status (None: no such member). A duplicate
    merged into another member names its survivor, as the referrals that named it before the merge
    do: its referral code may still be shown in its old app."""
    query = select(members_t.c.id, members_t.c.status, members_t.c.merged_into)
    row = tx.session.execute(query.where(members_t.c.id == member_id)).first()
    if row is not None and row.merged_into is not None:  # a merge re-points earlier duplicates: one step
        row = tx.session.execute(query.where(members_t.c.id == row.merged_into)).first()
    return row


def _referrer(tx: Tx, member_id: str) -> str | None:
    """The active member a referral names (None: none). A referral to a merged member could never be
    paid (it is never locked)."""
    row = _named(tx, member_id)
    if row is None or row.status != "active" or row.merged_into is not None:
        return None
    return row.id


def pending_referrals(tx: Tx, referee_ids: Iterable[str]) -> dict[str, str]:
    """referee -> referrer, for referees whose referrer has no bonus yet."""
    found: dict[str, str] = {}
    for chunk in chunks(referee_ids):
        found.update(dict(tx.session.execute(
            select(referrals_t.c.referee_member_id, referrals_t.c.referrer_member_id)
            .outerjoin(bonuses_t, bonuses_t.c.referee_member_id == referrals_t.c.referee_member_id)
            .where(referrals_t.c.referee_member_id.in_(chunk), bonuses_t.c.referee_member_id.is_(None))).all()))
    return found


class Referrals:
    """One unit of work's referral bonuses for one partner."""

    def __init__(self, posting: Posting, programme: ReferralRules | None):
        self.posting = posting
        self.programme = programme
        self.rows: list[dict] = []
        self._pending: dict[str, str] | None = None

    def referrers_to_lock(self, earners: set[str]) -> set[str]:
        """Referrers who may get a bonus in this unit, read before locking so they are locked in id order."""
        if self.programme is None or not earners:
            return set()
        return set(pending_referrals(self.posting.tx, earners).values())

    def _pending_now(self) -> dict[str, str]:
        """The unit's earners' pending referrals, read once under the members' locks: this is the truth."""
        if self._pending is None:
            posting = self.posting
            earners = {e.member_id for e in posting.events if e.kind == "earn" and e.member_id}
            self._pending = pending_referrals(posting.tx, earners & set(posting.journal.members))
        return self._pending

    def bonus_due(self, event: Event, member_id: str) -> tuple[int, str] | None:
        """(points, funded_by) of the bonus ``after_earn`` would post if the earn ``event`` of
        ``member_id`` is written now, or None; read only (the referral stays pending), so that the earn
        and its quote can refuse, before anything is written, a bonus the ledger could not hold. The
        earn decides under the members' locks, as ``after_earn`` does; a quote reads without them."""
        programme = self.programme
        if programme is None or event.kind != "earn" or (event.amount or 0) < programme.min_spend:
            return None
        posting = self.posting
        if posting.quote:  # no locks: the referrer as the earn's lock would find it (active, not merged)
            referrer_id = pending_referrals(posting.tx, [member_id]).get(member_id)
            if referrer_id is None or _referrer(posting.tx, referrer_id) != referrer_id:
                return None
        elif self._pending_now().get(member_id) not in posting.journal.members:
            return None
        return programme.bonus_points, programme.funded_by

    def after_earn(self, event: Event, earn_entry: dict, member, result: dict) -> None:
        """Post the referrer's bonus if this is the referee's first qualifying earn. Never refuses."""
        programme = self.programme
        if programme is None or event.kind != "earn" or (event.amount or 0) < programme.min_spend:
            return
        posting = self.posting
        referrer_id = self._pending_now().pop(member.id, None)
        referrer = posting.journal.members.get(referrer_id or "")
        if referrer is None:  # no referral pending, or the referrer was erased (or not locked): no bonus
            return
        points, journal = programme.bonus_points, posting.journal
        entry = journal.entry("bonus", points, partner_id=posting.partner_id, member_id=referrer.id,
                              occurred_at=posting.now,
                              request={"kind": "referral_bonus", "referee_member_id": member.id,
                                       "qualifying_entry_id": earn_entry["id"], "points": points})
        if programme.funded_by == "partner":
            # a prepaid partner's float was checked for it, and drawn, with the qualifying earn
            # (``Posting._earn_checks``: ``bonus_due`` told it this bonus)
            terms = posting.terms
            lot = posting._new_lot(entry, referrer.id, posting.partner_id, terms.billing, terms.contract_id, points)
            journal.transfer(entry, f"partner:{posting.partner_id}:issued", f"member:{referrer.id}", points)
            for line in issuance_lines(lot, terms):
                journal.line(entry, line)
        else:
            lot = posting._new_lot(entry, referrer.id, None, "network", None, points)
            journal.transfer(entry, "network:promotions", f"member:{referrer.id}", points)
        referrer.change(available=points)
        from shared.ledger.posting import lot_json

        entry["result"] = {"entry_id": entry["id"], "kind": "bonus", "reason": "referral", "member_id": referrer.id,
                           "points": points, "lots": [lot_json(lot)], "posted_at": posting.now.isoformat(),
                           "balance": referrer.balance()}
        self.rows.append({"referee_member_id": member.id, "referrer_member_id": referrer.id, "entry_id": entry["id"],
                          "qualifying_entry_id": earn_entry["id"], "points": points,
                          "funded_by": programme.funded_by, "posted_at": posting.now})
        result["referral_bonus"] = {"transaction_id": entry["id"], "points": points,
                                    "funded_by": programme.funded_by}

    def after_earn_reversed(self, original_entry_id: str, member_id: str, points: int) -> None:
        """A reversal of an earn that qualified its member's referral, whose bonus was paid: the bonus stays
        (docs/earn-rules.md, "Referral bonuses"), and an operator is told, since an earn sent and taken
        back is how a referral bonus would be farmed (``referral_qualifier_reversed``)."""
        in_unit = [row for row in self.rows if row["qualifying_entry_id"] == original_entry_id]
        bonus = in_unit[0] if in_unit else self.posting.tx.session.execute(
            select(bonuses_t.c.referrer_member_id, bonuses_t.c.points, bonuses_t.c.funded_by)
            .where(bonuses_t.c.qualifying_entry_id == original_entry_id)).mappings().first()
        if bonus is not None:
            raise_alert(self.posting.tx, "referral_qualifier_reversed", partner_id=self.posting.partner_id,
                        member_id=member_id, referrer_member_id=bonus["referrer_member_id"],
                        bonus_points=int(bonus["points"]), funded_by=bonus["funded_by"],
                        qualifying_entry_id=original_entry_id, reversed_points=points)

    def flush(self) -> None:
        if self.rows:
            self.posting.tx.session.execute(insert(bonuses_t), self.rows)
