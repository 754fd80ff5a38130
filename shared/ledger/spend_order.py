"""A member's lots in consumption order within one unit of work.

A batch may hold thousands of spends of one member (a partner's end-of-day file), and a loyal member
may hold thousands of open lots. Sorting every lot of the member and looking at each for the due ones
on every spend made such a batch quadratic: 10,000 burns of a member with 10,000 lots took 30 s of one
unit (docs/benchmarks.md, "2026-12-07 (later)"). ``SpendOrder`` keeps the lots sorted by
``consumption_key`` once, without the lots that have no free points, so each spend looks only at
the lots it takes.

What may change the order is known: the journal lists every lot given free points back (``Journal.freed``:
a returned or released point, in ``move`` and ``reserve``), and only a reversal's grace moves a lot's
expiry (after giving it points back). The order lists only lots that may have free points: a lot found
without any (spent, or reserved by a hold) is dropped as the order is walked, and a lot given points
back is listed again where its key sorts now (a reversal's grace moves it). Lots added to the
member's list (an earn's new lot, the rest of its lots read, a timed-out hold's lots) are listed in
place. Each change costs a binary search and a list insert or delete, never a sort.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime

from shared.ledger.rules import LotState, consumption_key


class MemberLots(list):
    """A member's lots in a unit: a list that knows its lots by id, so that ``lot in lots`` looks the id
    up instead of comparing the lot with every one before it field by field."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def append(self, lot: LotState) -> None:
        self.ids.add(lot.id)
        super().append(lot)

    def extend(self, lots) -> None:
        for lot in lots:
            self.append(lot)

    def __contains__(self, lot) -> bool:
        return lot.id in self.ids


class SpendOrder:
    """The lots of a member's list (``source``, which the unit only appends to) that may have free
    points, in consumption order."""

    def __init__(self, source: MemberLots, freed: int):
        self.source = source
        self.seen = len(source)
        self.lots = sorted((lot for lot in source if lot.free > 0), key=consumption_key)
        self.keys = {lot.id: consumption_key(lot) for lot in self.lots}  # each listed lot's key as sorted
        self.freed = freed  # how many of the journal's freed lots this order has taken in

    def refresh(self, freed: list[LotState]) -> None:
        """Take in what changed since: lots given free points back (``freed``, the journal's list for
        the whole unit) and lots appended to ``source``."""
        for lot in freed[self.freed:]:
            if lot in self.source:  # not another member's
                self._place(lot)
        self.freed = len(freed)
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
        if key == old:
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
