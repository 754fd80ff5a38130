"""What is due on a member but not written yet, so that every balance a unit of work answers is the
balance as a spend at that instant would find it (docs/ledger.md, decisions 6, 7 and 13): points past
their expiry gone, holds past their timeout released (and what they reserved past the expiry it had
then gone with them), as ``member_balance(apply_due=True)`` reads it for ``GET /v1/members/{id}``.

Nothing is written for it: the expiry and hold-timeout jobs, or the member's next spend, do that. The
unit reads, under the members' locks, each member's open lots past their expiry (one range of
``ix_lots_member_order``; nothing in the common case) and, only for a member with points held, its open
holds past their timeout. ``MemberState.balance()`` then applies what is still due at the moment it
answers: what the unit itself expired or released in the meantime is not counted twice, since the lots
are looked up in the journal (the state the unit changed) and holds the unit resolved are skipped.
Within one unit nothing else becomes due: its time does not move, lots only get later expiries (a
reversal's grace), and the holds it makes time out after it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, literal_column, select

from shared.db.lists import among_bound, among_rows, per_dialect
from shared.ledger.journal import Journal
from shared.ledger.rules import LotState
from shared.ledger.state import _lot, is_open
from shared.models import Hold, HoldLot, Lot

lots_t, holds_t, hold_lots_t = Lot.__table__, Hold.__table__, HoldLot.__table__


class Due:
    """One member's lots past expiry and holds past timeout, as read under its lock, and what they take
    from its balance as the unit has left them: ``apply_due`` over them, kept up to date from what the
    unit changes (the journal tells it of each change to one of its lots and each resolution of one of
    its holds), so that each balance a batch answers costs what changed for this member since the one
    before, not every due lot and hold again (a batch of n results for a member with n due lots or holds
    was quadratic)."""

    __slots__ = ("journal", "lots", "holds", "_lot_parts", "_hold_parts", "_holds_of_lot", "_available",
                 "_held", "pending", "pending_resolutions")

    def __init__(self, journal: Journal, lots: list[LotState], holds: list[tuple]):
        self.journal = journal
        self.lots = lots  # open lots past their expiry (free points or not)
        # hold id -> (hold id, points, [(lot id, reserved, lot's expiry when reserved, lot's expiry)])
        self.holds = {hold[0]: hold for hold in holds}
        self._lot_parts: dict[str, int] = {}  # due lot -> the free points it takes from available
        self._hold_parts: dict[str, tuple[int, int]] = {}  # unresolved due hold -> what it gives (available, held)
        self._holds_of_lot: dict[str, list[str]] = {}
        self._available = self._held = 0
        self.pending: list[LotState] = []  # its lots changed since the last balance (Journal._touch)
        self.pending_resolutions: list[dict] = []  # its holds resolved since (Journal.resolve_hold)
        resolved = {row["id"] for row in journal.hold_resolutions} if holds else set()
        for lot in lots:
            self._part_of_lot(journal.lots.get(lot.id, lot))
        for hold_id, _, reserved in holds:
            journal.hold_watchers.setdefault(hold_id, []).append(self)
            for lot_id, *_ in reserved:
                self._holds_of_lot.setdefault(lot_id, []).append(hold_id)
            if hold_id not in resolved:
                self._part_of_hold(hold_id)
        for lot_id in self._lot_parts.keys() | self._holds_of_lot.keys():
            journal.lot_watchers.setdefault(lot_id, []).append(self)

    def applied(self, available: int, held: int) -> tuple[int, int]:
        """(available, held) of the member's balance now stored in the journal, once what is due is applied."""
        if self.pending_resolutions:
            for row in self.pending_resolutions:
                if row["id"] in self._hold_parts:  # resolved by the unit: in the balance already
                    got_available, got_held = self._hold_parts.pop(row["id"])
                    self._available, self._held = self._available - got_available, self._held - got_held
            self.pending_resolutions.clear()
        if self.pending:
            for lot in self.pending:
                if lot.id in self._lot_parts:
                    self._part_of_lot(self.journal.lots.get(lot.id, lot))  # as the unit left it
                for hold_id in self._holds_of_lot.get(lot.id, ()):
                    if hold_id in self._hold_parts:
                        self._part_of_hold(hold_id)
            self.pending.clear()
        return available + self._available, held + self._held

    def _part_of_lot(self, lot) -> None:
        now = self.journal.tx.now
        part = lot.remaining - lot.reserved if lot.expires_at <= now else 0
        self._available -= part - self._lot_parts.get(lot.id, 0)
        self._lot_parts[lot.id] = part

    def _part_of_hold(self, hold_id: str) -> None:
        got = apply_due(0, 0, self.journal.tx.now, [], [self.holds[hold_id]], current=self.journal.lots)[:2]
        was_available, was_held = self._hold_parts.get(hold_id, (0, 0))
        self._hold_parts[hold_id] = got
        self._available += got[0] - was_available
        self._held += got[1] - was_held


def apply_due(available: int, held: int, now, lots, holds: list[tuple], *, current=None,
              resolved=frozenset()) -> tuple[int, int, dict[str, int]]:
    """(available, held, back) of a member's balance once what is due at ``now`` is applied, as the ledger
    applies it: each hold past its timeout releases its points (``expire_hold``), and each lot past its
    expiry loses what is free in it (``expire_due``), as do released points reserved past the expiry their
    lot had when the hold took them (``release_hold``; a reversal's grace is not theirs). ``back``: per lot
    id, released points that are free in it again (its lot not past expiry).

    ``lots``: the member's open lots past expiry (anything with ``id``, ``expires_at``, ``remaining`` and
    ``reserved``); ``holds``: its open holds past timeout, as ``group_due_holds`` gives them. ``current``: lots
    as a unit of work has left them (by id), which win over ``lots`` and the holds' lots as read;
    ``resolved``: ids of holds the unit released, captured or voided itself (in the balance already)."""
    current = current or {}
    back: dict[str, int] = {}
    for hold_id, points, reserved in holds:
        if hold_id in resolved:
            continue
        available, held = available + points, held - points
        for lot_id, part, expired_at, lot_expires_at in reserved:
            lot = current.get(lot_id)
            expires_at = lot.expires_at if lot is not None else lot_expires_at
            if expires_at <= now or (expired_at is not None and expired_at <= now):
                available -= part  # expires as it is released
            else:
                back[lot_id] = back.get(lot_id, 0) + part
    for lot in lots:
        lot = current.get(lot.id, lot)  # as the unit left it
        if lot.expires_at <= now:
            available -= lot.remaining - lot.reserved  # what the released points above do not include
    return available, held, back


def group_due_holds(rows) -> dict[str, dict[str, tuple]]:
    """``due_holds_query``'s rows as member id -> hold id -> (hold id, points, [(lot id, reserved, lot's
    expiry when reserved, lot's expiry)]), the holds in the query's order."""
    due_holds: dict[str, dict[str, tuple]] = {}
    for row in rows:
        hold = due_holds.setdefault(row.member_id, {}).setdefault(row.id, (row.id, row.points, []))
        hold[2].append((row.lot_id, row.reserved, row.lot_expires_at, row.expires_at_now))
    return due_holds


@per_dialect
def _due_lots_query(dialect: str):
    # the members' open lots past expiry: per member one range of ix_lots_member_order, empty as a rule
    return select(lots_t).where(among_bound(dialect, lots_t.c.member_id, "ids"), is_open(lots_t.c),
                                lots_t.c.expires_at <= bindparam("now"))


@per_dialect
def due_holds_query(dialect: str):
    return (select(holds_t.c.id, holds_t.c.member_id, holds_t.c.points, hold_lots_t.c.lot_id,
                   hold_lots_t.c.points.label("reserved"), hold_lots_t.c.lot_expires_at,
                   lots_t.c.expires_at.label("expires_at_now"))
            .join(hold_lots_t, hold_lots_t.c.hold_id == holds_t.c.id).join(lots_t, lots_t.c.id == hold_lots_t.c.lot_id)
            .where(among_bound(dialect, holds_t.c.member_id, "ids"), holds_t.c.status == literal_column("'open'"),
                   holds_t.c.expires_at <= bindparam("now"))
            .order_by(holds_t.c.member_id, holds_t.c.expires_at, holds_t.c.id, hold_lots_t.c.seq))


def load_due(journal: Journal, member_ids: Iterable[str] | None = None, *, lots: bool = True) -> None:
    """Read what is due on the journal's locked members (``member_ids``: some of them; all by default)
    and attach it to them, so that their ``balance()`` answers it applied. ``lots=False``: the caller
    expires every due lot of theirs itself (the expiry job), so only their timed-out holds are read."""
    tx = journal.tx
    members = {member_id: journal.members[member_id]
               for member_id in (journal.members if member_ids is None else member_ids) if member_id in journal.members}
    if not members:
        return
    due_lots: dict[str, list[LotState]] = {}
    if lots:
        for row in among_rows(tx, _due_lots_query(tx.dialect), members, now=tx.now):
            due_lots.setdefault(row.member_id, []).append(_lot(row))
    holding = [member_id for member_id, member in members.items() if member.held]  # no points held, no holds
    due_holds = group_due_holds(among_rows(tx, due_holds_query(tx.dialect), holding, now=tx.now)) if holding else {}
    for member_id, member in members.items():
        found_lots, found_holds = due_lots.get(member_id, []), list(due_holds.get(member_id, {}).values())
        member.due = Due(journal, found_lots, found_holds) if found_lots or found_holds else None
