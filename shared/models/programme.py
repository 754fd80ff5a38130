"""Programme history: tier changes, activity status changes, expiry reminders (each row once)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base

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
