"""One member as an operator sees it: balance, tier, activity status and their histories."""

from __future__ import annotations

from sqlalchemy import select

from shared.db.database import Tx
from shared.ledger.queries import member_balance
from shared.models import Member, MemberMerge, MemberStatusHistory, MemberTierHistory
from shared.programme.reminders import reminders_for
from shared.programme.tiers import tier_view


def member_summary(tx: Tx, member_id: str, *, history_limit: int = 20) -> dict:
    # as a spend now would find it (holds past their timeout released, points past their expiry gone),
    # as GET /v1/members/{id} answers, though the jobs have not written so yet; refuses unknown and erased members
    balance = member_balance(tx, member_id, apply_due=True)
    member = tx.session.execute(select(Member.activity_status, Member.activity_status_since, Member.created_at,
                                       Member.merged_into)
                                .where(Member.id == member_id)).one()
    tiers = tx.session.execute(select(MemberTierHistory).where(MemberTierHistory.member_id == member_id)
                               .order_by(MemberTierHistory.at.desc(), MemberTierHistory.id.desc())
                               .limit(history_limit)).scalars()
    statuses = tx.session.execute(select(MemberStatusHistory).where(MemberStatusHistory.member_id == member_id)
                                  .order_by(MemberStatusHistory.at.desc(), MemberStatusHistory.id.desc())
                                  .limit(history_limit)).scalars()
    return {
        "member_id": member_id, "enrolled_at": member.created_at.isoformat(), "merged_into": member.merged_into,
        "balance": {"available": balance["available"], "held": balance["held"]},
        "expiring_soon": balance["expiring_soon"],
        "tier": tier_view(tx, member_id),
        "activity_status": member.activity_status,
        "activity_status_since": member.activity_status_since.isoformat() if member.activity_status_since else None,
        "tier_history": [{"at": h.at.isoformat(), "from": h.from_tier, "to": h.to_tier, "reason": h.reason,
                          "qualifying_points": h.qualifying_points} for h in tiers],
        "status_history": [{"at": h.at.isoformat(), "from": h.from_status, "to": h.to_status,
                            "last_activity_at": h.last_activity_at.isoformat()} for h in statuses],
        "expiry_reminders": reminders_for(tx, member_id, history_limit),
        "merged_from": [{"member_id": m.duplicate_id, "at": m.at.isoformat(), "reason": m.reason}
                        for m in tx.session.execute(select(MemberMerge).where(MemberMerge.survivor_id == member_id)
                                                    .order_by(MemberMerge.at)).scalars()],
    }
