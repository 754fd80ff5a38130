"""Signed webhooks to partners: each partner's endpoint, the outbox of deliveries, and every attempt.

A delivery row is written in the same transaction as the ledger change it reports
(the transactional outbox); the delivery job sends it later, outside any transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base


class WebhookEndpoint(Base):
    """The one URL a partner receives events at, and the HMAC secret(s) that sign them.

    Secrets are stored in clear: they are shared HMAC keys the network must use to sign
    (``whsec_`` + base64 of 32 random bytes). During a rotation the previous secret keeps
    signing too until ``previous_secret_expires_at``.

    ``paused_until``: after a delivery to the endpoint timed out, none of its deliveries is claimed
    by the delivery job before then (NULL: not paused). ``pauses``: the pauses since the endpoint
    last took a delivery; each is twice as long as the one before, up to a longest.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (CheckConstraint("status IN ('active', 'disabled')", name="status"),
                      CheckConstraint("pauses >= 0", name="pauses"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pauses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class WebhookDelivery(Base):
    """One event for one partner (the outbox row), and where its delivery stands.

    ``id`` is the Standard Webhooks ``webhook-id``: the same on every retry and replay, so a
    receiver can drop duplicates. ``body`` is the exact JSON that is signed and sent.
    ``retry_from`` starts the retry window: the first attempt (set when first claimed), the operator's replay,
    or the endpoint being enabled again.

    ``status``: ``pending`` (queued, or waiting for its next try), ``delivered``, ``dead`` (its retry
    window ran out: an operator may replay it) or ``cancelled`` (never sent: the member withdrew its
    consent from the partner or was erased, or the partner was terminated; ``last_error`` says which;
    migration 0048).

    ``ix_webhook_deliveries_endpoint_due``: each endpoint's pending deliveries in the order they come
    due, so a claim reads an endpoint's first few due ones, not the whole backlog (migration 0043).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'dead', 'cancelled')", name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_due", "endpoint_id", "next_attempt_at", "id",
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retry_from: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(40))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """One HTTP call of a delivery: what the receiver answered, or why it could not."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
