"""The seal of the ledger: Merkle leaves, complete subtrees, signed checkpoints.

``ledger_leaves.entry_id`` deliberately has no foreign key: a seal must outlive an
entry deleted behind the ledger's back, so that ``pointsnet verify`` can name it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.types import UTCDateTime
from shared.models.base import Base


class LedgerLeaf(Base):
    """Leaf ``leaf_index`` of the tree: SHA-256(0x00 || canonical encoding of the entry)."""

    __tablename__ = "ledger_leaves"
    __table_args__ = (CheckConstraint("leaf_index >= 0", name="index_nonnegative"),)

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry_id: Mapped[str] = mapped_column(String(40), unique=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerNode(Base):
    """A complete subtree: leaves [node_index * 2^level, (node_index + 1) * 2^level), level >= 1."""

    __tablename__ = "ledger_nodes"
    __table_args__ = (CheckConstraint("level >= 1 AND node_index >= 0", name="position"),)

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    node_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class SealedCycle(Base):
    """A closed cycle all of whose entries are sealed: the sealer never looks at it again."""

    __tablename__ = "sealed_cycles"

    cycle_date: Mapped[date] = mapped_column(ForeignKey("cycles.cycle_date"), primary_key=True)
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Checkpoint(Base):
    """A signed checkpoint (C2SP signed note) of the tree at ``tree_size`` leaves."""

    __tablename__ = "checkpoints"
    __table_args__ = (CheckConstraint("tree_size >= 0", name="size_nonnegative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text)


class NetworkOrigin(Base):
    """An origin (``<public authority>/ledger``, a checkpoint note's first line and key name) the
    network has signed checkpoints under, from when. A note is judged under the origin written in
    it (the authority may change while checkpoints stay valid), so this record is what tells a note
    of this network from one the same key signed for another origin (``pointsnet verify``)."""

    __tablename__ = "network_origins"

    origin: Mapped[str] = mapped_column(Text, primary_key=True)
    first_used_at: Mapped[datetime] = mapped_column(UTCDateTime)
