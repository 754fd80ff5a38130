"""A member's lots in consumption order within one unit of work.

A batch may hold thousands of spends of one member (a partner's end-of-day file), and a loyal member
may hold thousands of open lots. Sorting every lot of the member and looking at each for the due ones
on every spend made such a batch quadratic: 10,000 burns of a member with 10,000 lots took 30 s of one
unit (docs/benchmarks.md, "2026-12-07 (later)"). ``SpendOrder`` keeps the lots sorted by
``consumption_key`` once, without the lots that have no free points, so each spend looks only at
the lots it takes.

What may change the order is known: the journal tells each member's list of every change to one of its
lots (``Journal._touch``, from ``move``, ``reserve`` and ``set_expiry``: a reversal's grace is the only
change of an expiry in a unit). The order lists only lots that may have free points: a lot found
without any (spent, or reserved by a hold) is dropped as the order is walked, and a changed lot with
free points is listed again where its key sorts now. Lots added to the member's list (an earn's new
lot, the rest of its lots read, a timed-out hold's lots) are listed in place. Each change costs a
binary search and a list insert or delete, never a sort.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime

from shared.ledger.rules import LotState, consumption_key


class MemberLots(list):
    """A member's lots in a unit: a list that knows its lots by id, so that ``lot in lots`` looks the id
    up instead of comparing the lot with every one before it field by field, and that the journal tells
    of each change to one of them (``pending``; it watches each lot in ``watchers``, the journal's
    ``lot_watchers``). Only ``append`` and ``extend`` add lots."""

    def __init__(self, watchers: dict[str, list]):
        super().__init__()
        self.ids: set[str] = set()
        self.watchers = watchers
        self.pending: list[LotState] = []  # its lots changed since its order last looked (Journal._touch)

    def append(self, lot: LotState) -> None:
        self.ids.add(lot.id)
        self.watchers.setdefault(lot.id, []).append(self)
        super().append(lot)

    def extend(self, lots) -> None:
        for lot in lots:
            self.append(lot)

    def __contains__(self, lot) -> bool:
        return lot.id in self.ids


class UnitLots:
    """The lots of each member read or made in one unit of work (``of``), and the order of each
    spender's (``order``)."""

    def __init__(self, journal):
        self.journal = journal
        self.members: dict[str, MemberLots] = {}
        self.orders: dict[str, SpendOrder] = {}

    def of(self, member_id: str) -> MemberLots:
        lots = self.members.get(member_id)
        if lots is None:
            lots = self.members[member_id] = MemberLots(self.journal.lot_watchers)
        return lots

    def order(self, member_id: str) -> SpendOrder:
        """The member's lots with free points in consumption order, as they are now."""
        order = self.orders.get(member_id)
        if order is None:
            order = self.orders[member_id] = SpendOrder(self.of(member_id))
        else:
            order.refresh()
        return order


class SpendOrder:
    """The lots of a member's list (``source``, which the unit only appends to) that may have free
    points, in consumption order."""

    def __init__(self, source: MemberLots):
        self.source = source
        self.seen = len(source)
        source.pending.clear()  # what changed before is in the lots as they are now
        self.lots = sorted((lot for lot in source if lot.free > 0), key=consumption_key)
        self.keys = {lot.id: consumption_key(lot) for lot in self.lots}  # each listed lot's key as sorted

    def refresh(self) -> None:
        """Take in what changed since: its lots changed (given points back, a new expiry) and lots
        appended to ``source``."""
        for lot in self.source.pending:
            self._place(lot)
        self.source.pending.clear()
        for lot in self.source[self.seen:]:
            self._place(lot)
        self.seen = len(self.source)

    def free_lots(self) -> Iterator[LotState]:
        """The lots with free points, in consumption order (those found without are dropped: a lot
        only has free points again through ``refresh``)."""
        lots, keys = self.lots, self.keys
        spent = 0
        while spent < len(lots) and lots[spent].free <= 0:
            del keys[lots[spent].id]
            spent += 1
        del lots[:spent]
        index = 0
        while index < len(lots):
            lot = lots[index]
            if lot.free > 0:
                yield lot
                index += 1
            else:  # reserved by a hold, or spent by the spend before
                del keys[lot.id], lots[index]

    def due(self, now: datetime) -> list[LotState]:
        """The lots with free points past their expiry: the front of the order."""
        due = []
        for lot in self.free_lots():
            if lot.expires_at > now:
                break
            due.append(lot)
        return due

    def _place(self, lot: LotState) -> None:
        """List the lot where its key sorts now (it may have free points); a lot whose expiry moved (a
        reversal's grace) leaves its old place first."""
        key, old = consumption_key(lot), self.keys.get(lot.id)
        if key == old or (old is None and lot.free <= 0):  # in its place, or would be dropped at once
            return
        if old is not None:
            at = bisect_left(self.lots, old, key=self._listed_key)
            if self.lots[at] is not lot:
                raise AssertionError(f"lot {lot.id} is not where its key sorts")
            del self.lots[at]
        self.keys[lot.id] = key
        self.lots.insert(bisect_left(self.lots, key, key=self._listed_key), lot)

    def _listed_key(self, lot: LotState) -> tuple:
        return self.keys[lot.id]
