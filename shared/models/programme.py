"""Programme records: referrals, activity awards, issuance counters; tier and activity status
history, expiry reminders and member merges (each row once)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base


class Referral(Base):
    """A member enrolled on another member's recommendation: at most one referrer per member."""

    __tablename__ = "referrals"
    __table_args__ = (CheckConstraint("referee_member_id <> referrer_member_id", name="not_self"),)

    referee_member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), primary_key=True)
    referrer_member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))  # where the referee was enrolled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReferralBonus(Base):
    """The referrer's bonus for one referral. The primary key on the referee makes it exactly once,
    even if two first earns of the referee race (the loser's unit fails and is retried)."""

    __tablename__ = "referral_bonuses"

    referee_member_id: Mapped[str] = mapped_column(ForeignKey("referrals.referee_member_id"), primary_key=True)
    referrer_member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id"), unique=True)  # the bonus entry
    qualifying_entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id"), unique=True)  # the referee's earn
    points: Mapped[int] = mapped_column(BigInteger)
    funded_by: Mapped[str] = mapped_column(String(16))  # partner | network
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ActivityAward(Base):
    """One award of a partner's activity to a member; counted for the activity's caps."""

    __tablename__ = "activity_awards"
    __table_args__ = (Index("ix_activity_awards_member", "member_id", "partner_id", "activity", "business_day"),)

    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id"), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    activity: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    business_day: Mapped[date] = mapped_column(Date)  # network day of the activity's occurred_at (else posted_at)
    points: Mapped[int] = mapped_column(BigInteger)


class IssuanceCounter(Base):
    """Partner-funded points a partner issued on one network day, kept only while a cap is in force.

    Capped earns of the partner update it under its row lock, so the cap holds exactly under any
    number of concurrent writers; uncapped partners never touch it (no hot row).
    """

    __tablename__ = "issuance_counters"
    __table_args__ = (CheckConstraint("points >= 0", name="points_not_negative"),)

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    business_day: Mapped[date] = mapped_column(Date, primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger)


TIER_REASONS = ("qualified", "anniversary_review", "merge")
ACTIVITY_STATUSES = ("active", "at_risk", "dormant")


class MemberTierHistory(Base):
    """Every change of a member's tier, with the qualifying points that decided it."""

    __tablename__ = "member_tier_history"
    __table_args__ = (
        CheckConstraint("reason IN (%s)" % ", ".join(f"'{r}'" for r in TIER_REASONS), name="reason"),
        CheckConstraint("from_tier <> to_tier", name="changed"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    from_tier: Mapped[str] = mapped_column(String(32))
    to_tier: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32))
    qualifying_points: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[str | None] = mapped_column(ForeignKey("entries.id"))  # the earn that crossed a threshold
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class MemberStatusHistory(Base):
    """Every change of a member's activity status and the last activity it was judged on."""

    __tablename__ = "member_status_history"
    __table_args__ = (
        CheckConstraint("to_status IN (%s)" % ", ".join(f"'{s}'" for s in ACTIVITY_STATUSES), name="to_status"),
        CheckConstraint("from_status <> to_status", name="changed"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ExpiryReminder(Base):
    """One reminder per (member, expiry date in network time, days before): the unique key makes it once."""

    __tablename__ = "expiry_reminders"
    __table_args__ = (
        UniqueConstraint("member_id", "expires_on", "days_before", name="uq_expiry_reminders_member_date_days"),
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("days_before > 0", name="days_before_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    expires_on: Mapped[date] = mapped_column(Date)
    days_before: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)  # free points expiring that day when the reminder was made
    first_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class MemberMerge(Base):
    """An operator merged a duplicate member into a survivor: what moved, and the ledger entry that moved it."""

    __tablename__ = "member_merges"
    __table_args__ = (CheckConstraint("survivor_id <> duplicate_id", name="distinct_members"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    survivor_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    duplicate_id: Mapped[str] = mapped_column(ForeignKey("members.id"), unique=True)
    entry_id: Mapped[str | None] = mapped_column(ForeignKey("entries.id"))  # None when nothing was left to move
    available: Mapped[int] = mapped_column(BigInteger)
    held: Mapped[int] = mapped_column(BigInteger)
    lots: Mapped[int] = mapped_column(Integer)
    holds: Mapped[int] = mapped_column(Integer)
    links: Mapped[int] = mapped_column(Integer)  # partner links moved (a partner linked to both keeps the survivor's)
    reason: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
