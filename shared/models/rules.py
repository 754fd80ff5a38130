"""Earn rule sets (versioned documents per partner and for the network) and campaign awards (for caps)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base


class EarnRuleSet(Base):
    __tablename__ = "earn_rule_sets"
    __table_args__ = (UniqueConstraint("scope", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))  # a partner id, or "network"
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CampaignAward(Base):
    """Points a campaign gave a member in one earn; summed for per-member and per-campaign caps."""

    __tablename__ = "campaign_awards"
    __table_args__ = (Index("ix_campaign_awards_campaign_member", "campaign", "member_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(120))  # "<scope>:<campaign id>"
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)


class CampaignTotal(Base):
    """What a campaign gave in all: the sum of its awards, kept for a campaign that has had a cap in
    all (created from that sum by the first unit that checks the cap; every award inserted after is
    added, on PostgreSQL by a trigger of migration 0020, on SQLite by the journal), so a cap costs
    one row, not a sum over every award."""

    __tablename__ = "campaign_totals"
    __table_args__ = (CheckConstraint("points >= 0", name="points_not_negative"),)

    campaign: Mapped[str] = mapped_column(String(120), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger)
