"""Programme features around earning: referrals, activity awards and per-partner issuance counters."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String
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
    business_day: Mapped[date] = mapped_column(Date)  # network day (time zone midnight) of posted_at
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
