"""Operational records that are not ledger history and may be pruned."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base


class IdempotencyRecord(Base):
    """The stored outcome of a (partner, Idempotency-Key); kept at least 7 days."""

    __tablename__ = "idempotency_records"

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    request: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Alert(Base):
    """Something an operator should look at: a limit reached, a refusal that protects money.

    Alerts of one kind about one subject on one day collapse into one row with a count, so a
    partner hammering a limit raises one alert, not ten thousand. Only while the row is open: once
    acknowledged it stays as it was, and the next occurrence opens a new row with the same
    ``dedupe_key`` (unique among open rows only, migration 0034).
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index("uq_alerts_open_dedupe_key", "dedupe_key", unique=True,
              sqlite_where=text("acknowledged_at IS NULL"), postgresql_where=text("acknowledged_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"))
    member_id: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutstandingPoints(Base):
    """Points open in unexpired lots, by who funds them, as the worker last measured them (every
    minute): what the ``pointsnet_outstanding_points`` gauge reports. Summing every open lot of the
    network at each scrape of each API process cost a third of a core at 10 million open lots."""

    __tablename__ = "outstanding_points"

    billing: Mapped[str] = mapped_column(String(16), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
