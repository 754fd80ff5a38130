"""Report roll-ups: per-cycle sums written once, when a cycle is settled (a closed cycle never changes).

A report sums these small tables for the period's rolled-up cycles and aggregates only the other
cycles live from the ledger (shared/reports/rollup.py). Every table is keyed on the cycle, so a
cycle cannot be rolled up twice: ``report_rollups`` holds one row per rolled-up cycle, and the
sum tables reference it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base


class ReportRollup(Base):
    """A settled cycle whose report sums are in the roll-up tables below."""

    __tablename__ = "report_rollups"

    cycle_date: Mapped[date] = mapped_column(ForeignKey("cycles.cycle_date"), primary_key=True)
    rolled_up_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportCyclePoints(Base):
    """Points of a cycle by movement: ``issued`` (party: the issuing partner) or a lot-consumption
    category (``redeemed``, ``issue_reversed``, ``expired``, ``adjusted_out``; party: the redeemer; rows
    written before ``adjusted_out`` existed say ``other`` for it, and are read as ``adjusted_out``).
    ``funder`` and ``party`` are partner ids or ``network``."""

    __tablename__ = "report_cycle_points"

    cycle_date: Mapped[date] = mapped_column(ForeignKey("report_rollups.cycle_date"), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    funder: Mapped[str] = mapped_column(String(40), primary_key=True)
    party: Mapped[str] = mapped_column(String(40), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger)


class ReportCycleEarns(Base):
    """A partner's earns in a cycle: how many, their points, and the purchase amounts they gave."""

    __tablename__ = "report_cycle_earns"

    cycle_date: Mapped[date] = mapped_column(ForeignKey("report_rollups.cycle_date"), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    earns: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    earns_with_amount: Mapped[int] = mapped_column(BigInteger)
    # the purchase amounts summed: carry × 2^62 + minor, 0 <= minor < 2^62 (a partner may give 10^15 a
    # purchase: 9,224 earns of a cycle sum past a BIGINT)
    purchase_amount_minor: Mapped[int] = mapped_column(BigInteger)
    purchase_amount_carry: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ReportCycleMembers(Base):
    """Each member who transacted (earn, burn, capture) at a partner in a cycle, with how often and
    how many of those were earns: distinct-member figures of any period are counted from these rows,
    summed per member, never by adding per-cycle counts. ``partner_id`` is ``network`` for
    transactions without a partner."""

    __tablename__ = "report_cycle_members"
    __table_args__ = (Index("ix_report_cycle_members_cycle", "cycle_date"),)

    partner_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    cycle_date: Mapped[date] = mapped_column(ForeignKey("report_rollups.cycle_date"), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    transactions: Mapped[int] = mapped_column(BigInteger)
    earns: Mapped[int] = mapped_column(BigInteger)


class ReportCycleLines(Base):
    """A cycle's obligation lines summed exactly (micro-units) per payer, payee and kind: each is one
    ``S`` record of the statements once rounded."""

    __tablename__ = "report_cycle_lines"

    cycle_date: Mapped[date] = mapped_column(ForeignKey("report_rollups.cycle_date"), primary_key=True)
    payer: Mapped[str] = mapped_column(String(40), primary_key=True)
    payee: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    amount_micro: Mapped[int] = mapped_column(BigInteger)


class ReportCycleCampaigns(Base):
    """Campaign awards of a cycle's entries at a partner, per campaign."""

    __tablename__ = "report_cycle_campaigns"

    cycle_date: Mapped[date] = mapped_column(ForeignKey("report_rollups.cycle_date"), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(120), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger)


class ReportMonthMembers(Base):
    """``report_cycle_members`` of a month's rolled-up cycles summed per partner and member, added to
    as each cycle of the month is rolled up: a report whose period holds all of them counts the
    month's distinct members from one row per member instead of one per member and cycle."""

    __tablename__ = "report_month_members"

    partner_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # its first day
    member_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    transactions: Mapped[int] = mapped_column(BigInteger)
    earns: Mapped[int] = mapped_column(BigInteger)
