"""A member's lots in consumption order within one unit of work.

A batch may hold thousands of spends of one member (a partner's end-of-day file), and a loyal member
may hold thousands of open lots. Sorting every lot of the member and looking at each for the due ones
on every spend made such a batch quadratic: 10,000 burns of a member with 10,000 lots took 30 s of one
unit (docs/benchmarks.md, "2026-12-07 (third)"). ``SpendOrder`` keeps the lots sorted by
``consumption_key`` once, and a front before which every lot has no free points, so each spend looks
only at the lots it takes and each lot is passed over once.

What may break the order is known: the journal counts every lot given free points back (``Journal.freed``:
a returned or released point, in ``move`` and ``reserve``), and only a reversal's grace moves a lot's
expiry (after giving it points back). A lot given points back moves the front back to it; a lot whose
key changed, or one the order does not know, makes it sort again. Lots added to the member's list
(an earn's new lot, the rest of its lots read, a timed-out hold's lots) are inserted in place.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime

from shared.ledger.rules import LotState, consumption_key


class SpendOrder:
    """The lots of one member's list (``source``, which the unit only appends to) in consumption order."""

    def __init__(self, source: list[LotState], freed: int):
        self.source = source
        self.seen = len(source)
        self.lots = sorted(source, key=consumption_key)
        self.keys = {lot.id: consumption_key(lot) for lot in self.lots}
        self.front = 0  # every lot before it has no free points
        self.freed = freed  # how many of the journal's freed lots this order has taken in

    def refresh(self, freed: list[LotState]) -> bool:
        """Take in what changed since: lots appended to ``source``, lots given free points back
        (``freed``, the journal's list). False when the order must be made again instead."""
        for lot in freed[self.freed:]:
            key = self.keys.get(lot.id)
            if key is None:
                continue  # another member's lot (the journal's list is the unit's)
            if key != consumption_key(lot):
                return False  # its expiry moved (a reversal's grace)
            self.front = min(self.front, bisect_left(self.lots, key, key=consumption_key))
        self.freed = len(freed)
        for lot in self.source[self.seen:]:
            if lot.id in self.keys:
                return False  # the same lot twice in the member's list: not a list the order knows
            key = self.keys[lot.id] = consumption_key(lot)
            at = bisect_left(self.lots, key, key=consumption_key)
            self.lots.insert(at, lot)
            self.front = min(self.front, at)
        self.seen = len(self.source)
        return True

    def free_lots(self) -> Iterator[LotState]:
        """The lots with free points, in consumption order."""
        lots = self.lots
        while self.front < len(lots) and lots[self.front].free <= 0:
            self.front += 1
        for index in range(self.front, len(lots)):
            if lots[index].free > 0:
                yield lots[index]

    def due(self, now: datetime) -> list[LotState]:
        """The lots with free points past their expiry: the front of the order."""
        due = []
        for lot in self.free_lots():
            if lot.expires_at > now:
                break
            due.append(lot)
        return due
