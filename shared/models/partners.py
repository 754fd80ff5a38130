"""Partner merchants and their versioned contract terms."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base
from shared.partners.names import name_key


def _name_key_of_insert(context) -> str:
    return name_key(context.get_current_parameters()["name"])


class Partner(Base):
    __tablename__ = "partners"
    __table_args__ = (CheckConstraint("status IN ('active', 'suspended')", name="status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # SHA-256 of the name trimmed, NFKC-normalised and case-folded (shared/partners/names.py): names
    # that differ only in case, spacing at either end or Unicode form are one name. Computed from the
    # name on an insert that does not give it.
    name_key: Mapped[str] = mapped_column(String(64), unique=True, index=True,
                                          default=_name_key_of_insert)
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


class PartnerLimits(Base):
    """Finance limits of a partner, in minor units; NULL means "not limited".

    ``float_overdraft_minor`` set (0 or more) makes a prepaid partner's issuance draw on its float:
    issuance that would take the float below minus the overdraft is refused. ``exposure_limit_minor``
    raises alerts when a postpaid partner's outstanding points are worth more than the limit.
    """

    __tablename__ = "partner_limits"
    __table_args__ = (
        CheckConstraint("float_overdraft_minor IS NULL OR float_overdraft_minor >= 0", name="float_overdraft"),
        CheckConstraint("exposure_limit_minor IS NULL OR exposure_limit_minor >= 0", name="exposure_limit"),
        CheckConstraint("exposure_warn_ppm BETWEEN 0 AND 1000000", name="exposure_warn"),
    )

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    float_overdraft_minor: Mapped[int | None] = mapped_column(BigInteger)
    exposure_limit_minor: Mapped[int | None] = mapped_column(BigInteger)
    exposure_warn_ppm: Mapped[int] = mapped_column(Integer, default=800_000)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the float has given, kept once a float is enforced: the sum of the partner's prepaid_funding
    # line amounts (micro-units), set from that sum when the overdraft is first set and then added to
    # (PostgreSQL: a trigger on obligation_lines, migration 0022; SQLite: the journal); NULL: not kept.
    float_drawn_micro: Mapped[int | None] = mapped_column(BigInteger)
    # Where the float (last) was enforced from (docs/ledger.md, decision 14): the cycle open then, and the
    # prepaid_funding lines of the cycles before it that no settlement took from the float (settled by
    # bank, or settled later, by bank: a float settles only cycles from this one on). The float counts
    # the kept total less these (``limits._balance_micro``). NULL cycle: every cycle's lines count (a
    # float enforced before migration 0045 whose settlements show no cycle settled by bank before it).
    float_opened_cycle: Mapped[date | None] = mapped_column(Date)
    float_opened_micro: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class FloatTopup(Base):
    """Money a prepaid partner paid into its float, recorded by finance with the bank reference."""

    __tablename__ = "float_topups"
    __table_args__ = (
        UniqueConstraint("partner_id", "bank_reference"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    bank_reference: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Termination(Base):
    """A partner leaving the network: its final cycle and how its outstanding points are settled.

    ``keep_paying``: the issuer keeps reimbursing redemptions of its points under its last contract.
    ``buy_out``: in the final cycle the issuer pays ``buy_out_rate_ppm`` of its outstanding points'
    value to the network once, and the network reimburses later redemptions of those points.
    """

    __tablename__ = "terminations"
    __table_args__ = (
        CheckConstraint("settlement IN ('keep_paying', 'buy_out')", name="settlement"),
        CheckConstraint("buy_out_rate_ppm IS NULL OR buy_out_rate_ppm BETWEEN 0 AND 1000000", name="buy_out_rate"),
    )

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    final_cycle: Mapped[date] = mapped_column(Date)
    settlement: Mapped[str] = mapped_column(String(16))
    buy_out_rate_ppm: Mapped[int | None] = mapped_column(Integer)
    outstanding_points: Mapped[int | None] = mapped_column(BigInteger)
    buy_out_entry_id: Mapped[str | None] = mapped_column(String(40))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
