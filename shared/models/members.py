"""Members: opaque ids on the ledger, personal data only as ciphertext and blind-index values."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base


class Member(Base):
    """Stored balances: ``available`` and ``held`` equal their accounts' postings and,
    together, the remaining points of the member's lots (checked by ``pointsnet verify``)."""

    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint("available >= 0", name="available_not_negative"),
        CheckConstraint("held >= 0", name="held_not_negative"),
        CheckConstraint("status IN ('active', 'erased')", name="status"),
        # Only the few merged duplicates: a survivor's duplicates are found by it, and a planner
        # without statistics (a new database) can never take it for ``merged_into IS NULL``,
        # which holds for nearly every member (migration 0018).
        Index("ix_members_merged_into", "merged_into", sqlite_where=text("merged_into IS NOT NULL"),
              postgresql_where=text("merged_into IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    enrolled_by: Mapped[str | None] = mapped_column(ForeignKey("partners.id"))
    phone_ct: Mapped[str | None] = mapped_column(Text)
    phone_bidx: Mapped[str | None] = mapped_column(String(80), unique=True)
    email_ct: Mapped[str | None] = mapped_column(Text)
    email_bidx: Mapped[str | None] = mapped_column(String(80), unique=True)
    name_ct: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Programme (shared/programme): NULL tier = the lowest configured tier; a tier above it is
    # reviewed once its anniversary plus the grace period has passed.
    tier: Mapped[str | None] = mapped_column(String(32))
    tier_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tier_anniversary_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Activity recency (active, at_risk, dormant); ``status`` above is the record's own state.
    activity_status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    activity_status_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A duplicate merged into another member by an operator: never locked (so never changed) again.
    # (No foreign key: adding one to members would make SQLite rebuild the table.)
    merged_into: Mapped[str | None] = mapped_column(String(40))


class MemberLink(Base):
    """A partner's link to a member (with its own customer ref): the member's consent."""

    __tablename__ = "member_links"
    __table_args__ = (UniqueConstraint("partner_id", "customer_ref", name="uq_member_links_customer_ref"),)

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), primary_key=True, index=True)
    customer_ref: Mapped[str | None] = mapped_column(String(128))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LinkToken(Base):
    """Single-use, short-lived consent token; only its SHA-256 is stored."""

    __tablename__ = "link_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    issued_by: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_by: Mapped[str | None] = mapped_column(ForeignKey("partners.id"))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MemberErasure(Base):
    """An operator erased a member's personal data: when, why, and the entry that forfeited its points.

    Holds no personal data itself (``reason`` is the operator's reference, e.g. a request number)."""

    __tablename__ = "member_erasures"
    __table_args__ = (CheckConstraint("points_forfeited >= 0", name="points_forfeited_not_negative"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), unique=True)
    entry_id: Mapped[str | None] = mapped_column(ForeignKey("entries.id"))  # None: nothing left to forfeit
    points_forfeited: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(500))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MemberUnlink(Base):
    """A member withdrew its consent from one partner: the link that went (``linked_at``), when, at whose
    request (``partner``: the partner's API, the member at its till or in its app; ``operator``: the
    network's operators, ``pointsnet members unlink``) and the operator's reference. Holds no personal data:
    the partner's ``customer_ref`` went with the link. Reports of past periods count the members linked
    then from these rows beside the links (shared/members/consent.py)."""

    __tablename__ = "member_unlinks"
    __table_args__ = (
        CheckConstraint("requested_by IN ('partner', 'operator')", name="requested_by"),
        CheckConstraint("unlinked_at >= linked_at", name="after_linking"),
        Index("ix_member_unlinks_partner_id_linked_at", "partner_id", "linked_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    unlinked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requested_by: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
