"""Partner merchants and their versioned contract terms."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base


class Partner(Base):
    __tablename__ = "partners"
    __table_args__ = (CheckConstraint("status IN ('active', 'suspended')", name="status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Contract(Base):
    """Terms in force for a partner from ``effective_from`` (a cycle date) until the next version.

    Money is exact: per-point values in micro-units of the minor unit, rates in parts per million.
    """

    __tablename__ = "contracts"
    __table_args__ = (
        UniqueConstraint("partner_id", "version"),
        UniqueConstraint("partner_id", "effective_from", name="uq_contracts_partner_effective"),
        CheckConstraint("billing IN ('postpaid', 'prepaid')", name="billing"),
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint("point_value_micro >= 0", name="point_value"),
        CheckConstraint("issuance_fee_micro >= 0", name="issuance_fee"),
        CheckConstraint("redemption_fee_ppm BETWEEN 0 AND 1000000", name="redemption_fee"),
        CheckConstraint("breakage_share_ppm BETWEEN 0 AND 1000000", name="breakage_share"),
        CheckConstraint("base_rate_micro >= 0", name="base_rate"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[date] = mapped_column(Date)
    billing: Mapped[str] = mapped_column(String(16))
    point_value_micro: Mapped[int] = mapped_column(BigInteger)
    issuance_fee_micro: Mapped[int] = mapped_column(BigInteger)
    redemption_fee_ppm: Mapped[int] = mapped_column(Integer)
    breakage_share_ppm: Mapped[int] = mapped_column(Integer)
    base_rate_micro: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
