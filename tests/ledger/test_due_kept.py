"""A member's due lots and holds (shared/ledger/due.py ``Due``) are applied to each balance a unit
answers from parts kept up to date as the unit changes lots and resolves holds, not by walking every
due lot and hold again for each answer. Under any sequence of what a unit does, the kept parts give
what ``apply_due`` over everything gives, as every answer did before."""

from __future__ import annotations

import types
from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from shared.ledger.due import Due, apply_due
from shared.ledger.journal import Journal
from shared.ledger.rules import LotState

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
LOTS = 6
days = st.integers(min_value=-3, max_value=3).map(lambda n: NOW + timedelta(days=n))
lot_states = st.tuples(st.integers(1, 9), st.integers(0, 9), st.integers(0, 9), days)  # points, spent, reserved, expiry
holds = st.lists(st.tuples(st.integers(1, 5), st.lists(st.tuples(st.integers(0, LOTS - 1), st.integers(1, 3),
                                                                 st.one_of(st.none(), days)), min_size=1, max_size=3)),
                 max_size=4)
steps = st.lists(st.one_of(
    st.tuples(st.just("move"), st.integers(0, LOTS - 1), st.integers(-9, 9)),
    st.tuples(st.just("reserve"), st.integers(0, LOTS - 1), st.integers(-9, 9)),
    st.tuples(st.just("grace"), st.integers(0, LOTS - 1), st.integers(0, 40)),
    st.tuples(st.just("resolve"), st.integers(0, 3), st.integers(0, 0)),
    st.tuples(st.just("load"), st.integers(0, LOTS - 1), st.integers(0, 0)),  # the unit reads a lot later
), max_size=40)


@settings(max_examples=400, deadline=None)
@given(states=st.lists(lot_states, min_size=LOTS, max_size=LOTS), held=holds, steps=steps,
       loaded=st.sets(st.integers(0, LOTS - 1)))
def test_the_kept_parts_give_what_applying_everything_again_gives(states, held, steps, loaded):
    journal = Journal(tx=types.SimpleNamespace(now=NOW), cycle_date=date(2026, 6, 1))
    read = []  # the lots as the member's due lots were read
    for n, (points, spent, reserved, expires_at) in enumerate(states):
        remaining = max(points - spent, 0)
        read.append(LotState(f"lot{n}", "mbr", "ent", None, "network", None, points, remaining,
                             min(reserved, remaining), NOW - timedelta(days=30), expires_at))

    def copy(lot):
        return LotState(lot.id, lot.member_id, lot.entry_id, None, "network", None, lot.points, lot.remaining,
                        lot.reserved, lot.issued_at, lot.expires_at)

    for n in loaded:  # some lots also read by the unit (its own objects)
        journal.lots[read[n].id] = copy(read[n])
    due_lots = [lot for lot in read if lot.expires_at <= NOW]
    due_holds = [(f"hold{h}", points, [(f"lot{n}", part, expired_at, read[n].expires_at)
                                       for n, part, expired_at in parts])
                 for h, (points, parts) in enumerate(held)]
    due = Due(journal, due_lots, due_holds)

    def everything_again():
        resolved = {row["id"] for row in journal.hold_resolutions}
        return apply_due(0, 0, NOW, due_lots, due_holds, current=journal.lots, resolved=resolved)[:2]

    assert due.applied(0, 0) == everything_again()
    for kind, n, amount in steps:
        lot = journal.lots.get(f"lot{n}")
        if kind == "load" and lot is None:
            journal.lots[read[n].id] = copy(read[n])
        elif kind == "resolve" and n < len(due_holds):
            journal.resolve_hold({"id": due_holds[n][0], "status": "voided"})
        elif lot is not None and kind == "move" and 0 <= lot.reserved <= lot.remaining - amount <= lot.points:
            journal.move({"id": "ent1"}, lot, amount)
        elif lot is not None and kind == "reserve" and 0 <= lot.reserved + amount <= lot.remaining:
            journal.reserve(lot, amount)
        elif lot is not None and kind == "grace":
            journal.set_expiry(lot, max(lot.expires_at, NOW + timedelta(days=amount - 10)))
        assert due.applied(7, 3) == tuple(a + b for a, b in zip((7, 3), everything_again()))
