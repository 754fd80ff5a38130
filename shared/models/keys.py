"""Partners' request-signing keys and the nonces already seen for them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base


class PartnerKey(Base):
    """An Ed25519 public key a partner signs with; at most two active at once (rotation with overlap)."""

    __tablename__ = "partner_keys"
    __table_args__ = (CheckConstraint("status IN ('active', 'revoked')", name="status"),)

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    public_key: Mapped[str] = mapped_column(Text)  # base64url of the 32 raw bytes
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RequestNonce(Base):
    """A signature nonce seen for a key; kept for the freshness window, then pruned."""

    __tablename__ = "request_nonces"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
