"""Settlement runs (one per cycle, ever), each party's settlement, and the business-day calendar."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (BigInteger, CheckConstraint, Date, ForeignKey, ForeignKeyConstraint, Index, Integer, String,
                        Text, UniqueConstraint)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base


class SettlementRun(Base):
    """The settlement of one cycle. The primary key on the cycle makes a second settlement impossible."""

    __tablename__ = "settlement_runs"

    cycle_date: Mapped[date] = mapped_column(ForeignKey("cycles.cycle_date"), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(40), unique=True)
    directory: Mapped[str] = mapped_column(Text)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    settled_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CyclePosition(Base):
    """The manifest's ``ledger_position`` of a settled cycle, kept when every cycle up to it was closed
    (entries join only the current cycle, so the figures cannot change), so that a later cycle's
    counts only the entries since. ``pointsnet verify`` recounts them (``cycle_position_matches_entries``)."""

    __tablename__ = "cycle_positions"

    cycle_date: Mapped[date] = mapped_column(ForeignKey("cycles.cycle_date"), primary_key=True)
    entries_in_cycle: Mapped[int] = mapped_column(BigInteger)
    entries_through_cycle: Mapped[int] = mapped_column(BigInteger)
    last_transaction_id: Mapped[str | None] = mapped_column(String(40))


class Settlement(Base):
    """What one party pays (negative) or receives (positive) for a cycle, and whether it happened.

    ``net_minor`` is the statement's net. ``from_float_minor`` is the part of it settled from the
    party's prepaid float, fixed at settlement: a partner with a float enforced then has the part of
    its cycle's rounded ``prepaid_funding`` sum that the float held (``limits.float_draws``), the
    network minus the sum of those (it was paid them by top-ups), every other party 0. What moves by bank is ``net_minor + from_float_minor``; the
    status follows that amount (``nothing_due`` when it is 0).
    """

    __tablename__ = "settlements"
    __table_args__ = (
        CheckConstraint("status IN ('due', 'paid', 'received', 'nothing_due')", name="status"),
        # a party's statements, newest first (GET /v1/statements): the key starts with the cycle
        Index("ix_settlements_party_cycle", "party", "cycle_date"),
    )

    cycle_date: Mapped[date] = mapped_column(ForeignKey("settlement_runs.cycle_date"), primary_key=True)
    party: Mapped[str] = mapped_column(String(40), primary_key=True)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    from_float_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # What settlement credited the party's float (micro-units, signed) so that the float gave exactly
    # the statement's figure: the cycle's exact prepaid_funding sum less that sum rounded once to minor
    # units (a partner with a float enforced then; 0 for every other party). The float's balance counts
    # it (``limits.float_status``): after settlement, top-ups less the settled funding, in minor units.
    float_rounding_micro: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    payment_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    bank_reference: Mapped[str | None] = mapped_column(String(128))
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @hybrid_property
    def by_bank_minor(self) -> int:
        """What moves by bank (receives +, pays −): the net without the part a prepaid float settled.
        In Python on a row, and in SQL (``Settlement.by_bank_minor < 0``) alike."""
        return self.net_minor + self.from_float_minor


class SettlementPayment(Base):
    """One bank transfer recorded against a party's settlement (``clearing mark-paid``, the dashboard's
    Mark paid): what moved, with the bank's reference. A settlement is paid (or received) when its
    payments add up to its by-bank amount (its sign aside); until then it stays ``due`` with the rest
    outstanding. A bank reference is recorded once per settlement."""

    __tablename__ = "settlement_payments"
    __table_args__ = (
        ForeignKeyConstraint(["cycle_date", "party"], ["settlements.cycle_date", "settlements.party"]),
        UniqueConstraint("cycle_date", "party", "bank_reference"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_date: Mapped[date] = mapped_column(Date)
    party: Mapped[str] = mapped_column(String(40))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    bank_reference: Mapped[str] = mapped_column(String(128))
    # null only for a payment the upgrade to migration 0047 took from a settlement recorded without a time
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Holiday(Base):
    """A day of the business-day calendar that departs from the week: a ``holiday`` (a weekday on which
    no settlement payment is made) or a ``working_day`` (a Saturday or Sunday on which payments are made,
    a make-up working day). Every other Monday–Friday is a business day, every other weekend day not."""

    __tablename__ = "holidays"
    __table_args__ = (CheckConstraint("kind IN ('holiday', 'working_day')", name="kind"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(12), default="holiday", server_default="holiday")
