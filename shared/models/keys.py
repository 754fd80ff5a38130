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


class NetworkSigningKey(Base):
    """A public key the network signs (or signed) checkpoints, settlement manifests and answers with,
    recorded by ``pointsnet keys rotate-signing``: the key it retired (``retired_at`` set) and the one it
    made (``current_from`` set, ``retired_at`` empty). Only public keys: a retired private key is never
    kept. In the database, not beside the key file, so that every API host serves the same keys and
    ``pointsnet verify`` and ``pointsnet reconcile`` check what a retired key signed (shared/signing_keys.py)."""

    __tablename__ = "network_signing_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # network-<16 hex>, as served
    public_key: Mapped[str] = mapped_column(Text)  # base64url of the 32 raw bytes
    current_from: Mapped[datetime | None] = mapped_column(UTCDateTime)  # empty: from the network's start
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
