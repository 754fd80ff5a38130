"""The append-only points ledger: entries, transfers, lots, lot consumptions, obligation lines.

A transfer is one row with one debit and one credit account (TigerBeetle's layout),
so every entry's postings sum to zero by construction; ``points > 0`` and
``debit <> credit`` are database constraints.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger, CheckConstraint, Date, FetchedValue, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base

ENTRY_KINDS = (
    "earn", "bonus", "burn", "hold", "capture", "void", "hold_expiry",
    "reversal", "expiry", "adjustment",
)
LINE_KINDS = ("issuance_fee", "prepaid_funding", "redemption", "redemption_fee", "breakage_refund")


class Account(Base):
    """Points accounts: member:<id>, member:<id>:held, partner:<id>:issued|redeemed, network:*."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('member', 'member_held', 'partner_issued', 'partner_redeemed', 'network')", name="kind"
        ),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))


class Cycle(Base):
    """A business day of settlement. Writers hold its row FOR SHARE; closing takes it FOR UPDATE."""

    __tablename__ = "cycles"
    __table_args__ = (CheckConstraint("status IN ('open', 'closed')", name="status"),)

    cycle_date: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # fixed when the cycle is closed for settlement (runs.prepare_cycle); every writing of its files reads it
    payment_date: Mapped[date | None] = mapped_column(Date)


class NetworkSetting(Base):
    """A setting the ledger's history is cut by, kept as the network first ran with it: the time zone
    and the cut-off of its cycles (shared/ledger/cycles.py, ``pin_cycle_settings``)."""

    __tablename__ = "network_settings"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Entry(Base):
    """One immutable ledger event. ``request`` and ``result`` are canonical JSON, written once."""

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("partner_id", "reference", name="uq_entries_partner_reference"),
        CheckConstraint("kind IN (%s)" % ", ".join(f"'{k}'" for k in ENTRY_KINDS), name="kind"),
        CheckConstraint("points > 0", name="points_positive"),
        Index("ix_entries_member_posted", "member_id", "posted_at"),
        Index("ix_entries_partner_posted", "partner_id", "posted_at"),  # a day's issuance (velocity limits)
        # GET /v1/transactions: a partner's entries in the order of their writing transactions (0033)
        Index("ix_entries_partner_xid", "partner_id", "xid", "id"),
        # A member's reversals (rare): a tier's qualifying points take back what reversals of earns
        # took, and without it read the member's every entry in the window a second time (0019).
        Index("ix_entries_member_reversals", "member_id", "posted_at", sqlite_where=text("kind = 'reversal'"),
              postgresql_where=text("kind = 'reversal'")),
        # Reversals and a hold's resolutions are found by what they point at. Most entries point at
        # nothing, so these hold only entries that do: every index entry is paid by every write (0026).
        Index("ix_entries_original_entry_id_set", "original_entry_id",
              sqlite_where=text("original_entry_id IS NOT NULL"),
              postgresql_where=text("original_entry_id IS NOT NULL")),
        Index("ix_entries_hold_id_set", "hold_id", sqlite_where=text("hold_id IS NOT NULL"),
              postgresql_where=text("hold_id IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"))
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id"))
    reference: Mapped[str | None] = mapped_column(String(128))
    points: Mapped[int] = mapped_column(BigInteger)
    cycle_date: Mapped[date] = mapped_column(ForeignKey("cycles.cycle_date"), index=True)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    original_entry_id: Mapped[str | None] = mapped_column(ForeignKey("entries.id"))
    hold_id: Mapped[str | None] = mapped_column(String(40))
    request: Mapped[str] = mapped_column(Text, default="{}")
    result: Mapped[str] = mapped_column(Text, default="{}")
    # The writing transaction, in an order no later commit can fall behind (docs/ledger.md, "Listing
    # order"): on PostgreSQL its transaction id, the column's default (pg_current_xact_id(), never sent
    # by the journal); on SQLite, whose writers take turns at one lock, one more than the highest rowid
    # of entries when the unit writes (the journal sets it). Entries before migration 0033: 0.
    xid: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())


class Transfer(Base):
    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("debit_account <> credit_account", name="distinct_accounts"),
        # No index on the accounts: every posting names a partner's or the network's account, so such
        # an index grows by two entries per posting for reads no path makes (an account's balance is
        # summed by verify over the whole table; 0026 dropped them).
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id"), index=True)
    debit_account: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    credit_account: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    points: Mapped[int] = mapped_column(BigInteger)


class Lot(Base):
    """Points earned in one go, with exactly one funder (a partner, or the network)."""

    __tablename__ = "lots"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_bounds"),
        CheckConstraint("reserved >= 0 AND reserved <= remaining", name="reserved_bounds"),
        CheckConstraint("billing IN ('postpaid', 'prepaid', 'network')", name="billing"),
        CheckConstraint(
            "(billing = 'network' AND funder_partner_id IS NULL AND contract_id IS NULL) OR "
            "(billing <> 'network' AND funder_partner_id IS NOT NULL AND contract_id IS NOT NULL)",
            name="one_funder",
        ),
        # a member's lots, its open ones first as one range in consumption order (``shared.ledger.state``:
        # what spends, expiry and erasure read, without walking the member's spent history)
        Index("ix_lots_member_order", "member_id", text("(remaining > 0)"), "expires_at", "issued_at", "id"),
        # open lots by expiry: the expiry job's (and the open-liability queries') index; fully spent or
        # expired lots leave it, so finding the due lots never walks the ledger's history
        Index("ix_lots_open_expires", "expires_at", sqlite_where=text("remaining > 0"),
              postgresql_where=text("remaining > 0")),
        # a funder's open lots by expiry, with what liability reads: a report's liability costs the
        # partner's open lots (on PostgreSQL from the index alone), not the ledger's history
        # lots a merge moved (verify's lot_holder_follows_merges): none at all on most networks
        Index("ix_lots_merged_from_set", "merged_from", sqlite_where=text("merged_from IS NOT NULL"),
              postgresql_where=text("merged_from IS NOT NULL")),
        Index("ix_lots_open_funder", "funder_partner_id", "expires_at",
              postgresql_include=["remaining", "bought_out_at"], sqlite_where=text("remaining > 0"), postgresql_where=text("remaining > 0")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id"), index=True)
    funder_partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"))
    billing: Mapped[str] = mapped_column(String(16))
    contract_id: Mapped[str | None] = mapped_column(ForeignKey("contracts.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the funder left the network and bought its outstanding points out: the network
    # reimburses their later redemptions (shared/partners/lifecycle.py).
    bought_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The member the lot was issued to, once a merge moved the lot to another (NULL: never moved). The
    # lot's sealed leaf names that member: merges move lots, and a sealed leaf never changes.
    merged_from: Mapped[str | None] = mapped_column(String(40))


class LotConsumption(Base):
    """Every change of a lot's remaining points: positive takes, negative returns."""

    __tablename__ = "lot_consumptions"
    __table_args__ = (
        CheckConstraint("points <> 0", name="points_nonzero"),
        # also the index of an entry's consumptions (entry_id leads): no index on entry_id alone
        UniqueConstraint("entry_id", "seq", name="uq_lot_consumptions_entry_seq"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id"))
    lot_id: Mapped[str] = mapped_column(ForeignKey("lots.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)


class ObligationLine(Base):
    """Money one party owes another because of one entry, exact in micro-units."""

    __tablename__ = "obligation_lines"
    __table_args__ = (
        CheckConstraint("payer <> payee", name="payer_is_not_payee"),
        CheckConstraint("kind IN (%s)" % ", ".join(f"'{k}'" for k in LINE_KINDS), name="kind"),
        Index("ix_obligation_lines_cycle", "cycle_date", "payer", "payee", "kind"),
        # a partner's statement takes the cycle's lines it pays (the index above) or receives (this one)
        Index("ix_obligation_lines_cycle_payee", "cycle_date", "payee"),
        # a partner's float: the prepaid funding lines it paid, by cycle (0026: only those lines)
        Index("ix_obligation_lines_prepaid_funding", "payer", "cycle_date",
              sqlite_where=text("kind = 'prepaid_funding'"), postgresql_where=text("kind = 'prepaid_funding'")),
        # a reversal's lines point at the lines they reverse; the others at nothing (0026)
        Index("ix_obligation_lines_original_line_id_set", "original_line_id",
              sqlite_where=text("original_line_id IS NOT NULL"),
              postgresql_where=text("original_line_id IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id"), index=True)
    cycle_date: Mapped[date] = mapped_column(Date)
    payer: Mapped[str] = mapped_column(String(40))
    payee: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(24))
    points: Mapped[int] = mapped_column(BigInteger)
    amount_micro: Mapped[int] = mapped_column(BigInteger)
    contract_id: Mapped[str | None] = mapped_column(ForeignKey("contracts.id"))
    lot_id: Mapped[str | None] = mapped_column(ForeignKey("lots.id"))
    original_line_id: Mapped[str | None] = mapped_column(ForeignKey("obligation_lines.id"))
