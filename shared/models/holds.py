"""Two-phase redemption: a hold reserves specific lots until capture, void or timeout."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base


class Hold(Base):
    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("captured_points >= 0 AND captured_points <= points", name="captured_bounds"),
        CheckConstraint("status IN ('open', 'captured', 'voided', 'expired')", name="status"),
        CheckConstraint("(status = 'open') = (resolved_entry_id IS NULL)", name="resolved_once"),
        # open holds by expiry, the timeout job's index: a resolved hold leaves it (migration 0023)
        Index("ix_holds_open_expires", "expires_at", sqlite_where=text("status = 'open'"),
              postgresql_where=text("status = 'open'")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    captured_points: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_entry_id: Mapped[str | None] = mapped_column(ForeignKey("entries.id"), unique=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HoldLot(Base):
    __tablename__ = "hold_lots"
    __table_args__ = (CheckConstraint("points > 0", name="points_positive"),)

    hold_id: Mapped[str] = mapped_column(ForeignKey("holds.id"), primary_key=True)
    lot_id: Mapped[str] = mapped_column(ForeignKey("lots.id"), primary_key=True, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)
    # the lot's expiry when these points were reserved: they keep it, even if a reversal gives the lot
    # its grace while they are held (NULL: reserved before migration 0030 recorded it)
    lot_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
