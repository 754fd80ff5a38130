"""A unit's spends walk each member's lots in a kept order (shared/ledger/spend_order.py), not by
sorting and scanning every lot of the member for each spend as before.

Two ways: the order itself against sorting every lot afresh, under any sequence of what a unit does
to lots (spends, holds and their release, returned points, a reversal's grace, new lots); and whole
ledgers, two SQLite databases given the same random history of large mixed batches, one posting with
the kept order and one with the code it replaced — every outcome and every row must be identical."""

from __future__ import annotations

import os
import shutil
import types
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from shared.db import types as dbtypes
from shared.ledger import expiry, posting, state
from shared.ledger.events import Event
from shared.ledger.journal import Journal
from shared.ledger.rules import LotState, consumption_key, take_from_lots, take_in_order
from shared.ledger.spend_order import UnitLots
from shared.network import Network
from shared.partners.contracts import ContractTerms
from tests.conftest import PG_URL
from tests.ledger.test_spendable_differential import Ids, dump, norm, run_history

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def replaced_spendable(self, member_id):
    """``Posting._spendable`` as it was: every lot of the member looked at and sorted for each spend."""
    lots = self._lots_of(member_id)
    expiry.expire_due(self.journal, self.journal.members[member_id], lots, self.now)
    horizon = self._horizons.get(member_id)
    chosen = lots if horizon is None else [lot for lot in lots if consumption_key(lot) <= horizon]
    return sorted((lot for lot in chosen if lot.free > 0), key=consumption_key)


def replaced_expire_due(self, member):
    expiry.expire_due(self.journal, member, self._lots_of(member.id), self.now)


KEPT_ORDER = (posting.Posting._spendable, posting.Posting._expire_due)


def the_code_it_replaced(monkeypatch, mode):
    spendable, expire_due = KEPT_ORDER if mode == "new" else (replaced_spendable, replaced_expire_due)
    monkeypatch.setattr(posting.Posting, "_spendable", spendable)
    monkeypatch.setattr(posting.Posting, "_expire_due", expire_due)


@pytest.mark.skipif(bool(PG_URL), reason="two SQLite databases side by side; runs in the SQLite pass")
@pytest.mark.parametrize("seed", range(int(os.environ.get("POINTSNET_DIFFERENTIAL_SEEDS", "12")) // 2))
def test_large_batches_spend_as_before(template_db, tmp_path, monkeypatch, seed):
    # batches of 10 to 40 events over three members: many spends, holds, captures, voids and
    # reversals of one member in one unit (burns reversed in their own batch), pages of one to six
    # lots read at first
    run_history(template_db, tmp_path, monkeypatch, 1000 + seed, page=1 + seed % 6, profile=(0, 2, 3)[seed % 3],
                steps=40, configure=the_code_it_replaced, batch=(10, 40))



@pytest.mark.skipif(bool(PG_URL), reason="two SQLite databases side by side; runs in the SQLite pass")
@pytest.mark.parametrize("page", [1, 2, 32])
@pytest.mark.parametrize("grace_days", [0, 1, 30])
def test_a_lot_still_listed_that_a_reversal_gives_grace_is_spent_as_before(settings, template_db, tmp_path,
                                                                            monkeypatch, clock, page, grace_days):
    """The one path the random histories do not reach: a lot past its expiry, still in the order (a void
    just expired its rest), given points back with a reversal's grace in the same batch, then spent."""
    ids = Ids()
    monkeypatch.setattr(dbtypes, "os", types.SimpleNamespace(urandom=ids.urandom))
    monkeypatch.setattr(dbtypes, "_last", [0, -1])
    monkeypatch.setattr(dbtypes, "time", types.SimpleNamespace(time_ns=lambda: int(clock.now().timestamp() * 1e9)))
    settings = settings.model_copy(update={"return_grace_days": grace_days, "expiry_policy": "days:20"})
    shutil.copyfile(template_db, tmp_path / "old.db")
    network = Network(settings, database_url=f"sqlite:///{tmp_path / 'old.db'}", clock=clock, pool_size=2)
    partner = network.create_partner("P", ContractTerms())["partner_id"]
    member = network.enrol(partner, phone="+8613800000000")["member_id"]
    first = network.post(partner, [Event("earn", "eA", member, points=5)])[0]  # lot A
    clock.advance(days=10)
    network.post(partner, [Event("earn", "eB", member, points=5)])
    clock.advance(days=1)
    network.post(partner, [Event("earn", "eC", member, points=5)])
    network.post(partner, [Event("burn", "b1", member, points=3)])  # from A
    a_expires = datetime.fromisoformat(first["lots"][0]["expires_at"])
    clock.advance(seconds=(a_expires - clock.now()).total_seconds() - 300)
    rest_of_a = network.post(partner, [Event("hold", "h1", member, points=2)])[0]
    of_b = network.post(partner, [Event("hold", "h2", member, points=1)])[0]
    clock.advance(minutes=10)  # A is past its expiry, both holds open
    network.close()
    shutil.copyfile(tmp_path / "old.db", tmp_path / "new.db")
    batch = [Event("void", hold_id=rest_of_a["hold_id"]),  # A's 2 points expire at once
             Event("reversal", "r1", original_reference="b1", points=2),  # back into A, with grace
             Event("burn", "x1", member, points=1),
             Event("void", hold_id=of_b["hold_id"]),
             Event("reversal", "r2", original_reference="b1", points=1),
             Event("burn", "x2", member, points=4),
             Event("burn", "x3", member, points=3)]
    got, base, last = {}, ids.n, list(dbtypes._last)
    for mode in ("old", "new"):
        ids.n = base
        dbtypes._last[:] = last
        monkeypatch.setattr(state, "PAGE", page)
        the_code_it_replaced(monkeypatch, mode)
        network = Network(settings, database_url=f"sqlite:///{tmp_path / f'{mode}.db'}", clock=clock, pool_size=2)
        try:
            got[mode] = ([norm(outcome) for outcome in network.post(partner, batch)], dump(network))
        finally:
            network.close()
    assert got["old"] == got["new"]


def test_points_given_back_in_a_unit_are_taken_first_again(network, clock):
    """A lot emptied and passed over earlier in the batch, then given its points back (a reversal of
    the burn that emptied it, a void of the hold that reserved it), is the first a later spend takes."""
    from tests.factories import make_member, make_partner, verify_ok

    partner = make_partner(network, "Shop")
    member = make_member(network, partner)
    first = []
    for n in range(4):  # lots of 1 point, in this order of consumption
        clock.advance(seconds=1)
        first.append(network.earn(partner, member, f"e{n}", points=1)["lots"][0]["lot_id"])
    hold = network.hold(partner, member, "h", 1)  # reserves the first lot
    clock.advance(seconds=1)
    outcomes = network.post(partner, [
        Event("burn", "b1", member, points=1),  # the second lot
        Event("burn", "b2", member, points=1),  # the third
        Event("reversal", "r1", original_reference="b1"),  # the second lot has its point again
        Event("burn", "b3", member, points=1),  # so it is taken, not the fourth
        Event("void", "v", hold_id=hold["hold_id"]),  # the first lot is free again
        Event("burn", "b4", member, points=1),  # and taken
        Event("burn", "b5", member, points=1),  # then the fourth
    ])
    taken = [[lot["lot_id"] for lot in outcome["consumed"]] for outcome in outcomes if "consumed" in outcome]
    assert taken == [[first[1]], [first[2]], [first[1]], [first[0]], [first[3]]]
    assert network.balance(member)["available"] == 0
    verify_ok(network)


# -- the order alone -----------------------------------------------------------------------------

lot_times = st.integers(min_value=-3, max_value=3).map(lambda days: NOW + timedelta(days=days))
members = st.sampled_from(["mbrA", "mbrB"])
new_lots = st.tuples(st.just("lot"), members, st.integers(1, 5), lot_times, st.integers(0, 2))
steps = st.lists(st.one_of(
    new_lots,
    st.tuples(st.just("spend"), members, st.integers(1, 8)),
    st.tuples(st.just("hold"), members, st.integers(1, 8)),
    st.tuples(st.just("release"), members, st.integers(0, 50)),
    st.tuples(st.just("return"), members, st.integers(0, 50)),
    st.tuples(st.just("grace"), members, st.integers(0, 50)),  # a reversal: points back and a later expiry
    st.tuples(st.just("expire"), members),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(first=st.lists(new_lots, max_size=12), steps=steps)
def test_the_order_takes_what_sorting_every_lot_takes(first, steps):
    """Two members' lots in one unit; after each step (what a unit does to lots, to either member's),
    each member's order lists what sorting all its lots with free points afresh gives."""
    journal = Journal(tx=None, cycle_date=date(2026, 6, 1))
    entry = {"id": "ent1"}  # the consumptions' entry (only its id is read)
    unit = UnitLots(journal)
    serial = iter(range(10**6))

    def add(member, points, expires_at, issued_days_ago):
        unit.of(member).append(LotState(f"lot{next(serial):04d}", member, "ent", None, "network", None, points,
                                        points, 0, NOW - timedelta(days=issued_days_ago), expires_at))

    for _, *lot in first:
        add(*lot)
    for step in steps:
        kind, member = step[0], step[1]
        if kind == "lot":
            add(*step[1:])
        lots = unit.of(member)
        order = unit.order(member)  # as Posting asks before each use
        reference = sorted((lot for lot in lots if lot.free > 0), key=consumption_key)
        assert list(order.free_lots()) == reference
        assert order.due(NOW) == [lot for lot in reference if lot.expires_at <= NOW]
        if kind in ("spend", "hold"):
            plan = take_in_order(order.free_lots(), step[2])
            assert plan == take_from_lots(lots, step[2])
            for lot, points in plan or ():
                journal.move(entry, lot, points) if kind == "spend" else journal.reserve(lot, points)
        elif kind == "expire":
            for lot in order.due(NOW):
                journal.move(entry, lot, lot.free)
        elif kind != "lot" and lots:
            lot = lots[step[2] % len(lots)]
            if kind == "release" and lot.reserved:
                journal.reserve(lot, -lot.reserved)
            elif kind in ("return", "grace") and lot.remaining < lot.points:
                journal.move(entry, lot, -(lot.points - lot.remaining))
                if kind == "grace":
                    journal.set_expiry(lot, max(lot.expires_at, NOW + timedelta(days=5)))


def test_a_lot_given_a_reversals_grace_moves_to_where_its_new_expiry_sorts():
    journal = Journal(tx=None, cycle_date=date(2026, 6, 1))
    unit = UnitLots(journal)
    lots = unit.of("mbr")
    lots.extend([LotState("lotA", "mbr", "ent", None, "network", None, 5, 5, 0, NOW - timedelta(days=400),
                          NOW - timedelta(days=1)),  # past its expiry
                 LotState("lotB", "mbr", "ent", None, "network", None, 5, 5, 0, NOW - timedelta(days=9),
                          NOW + timedelta(days=3))])
    plan = take_in_order(unit.order("mbr").free_lots(), 2)
    assert [(lot.id, points) for lot, points in plan] == [("lotA", 2)]
    journal.move({"id": "ent1"}, lots[0], 2)
    journal.move({"id": "ent2"}, lots[0], -2)  # returned by a reversal, which gives the lot its grace
    journal.set_expiry(lots[0], NOW + timedelta(days=30))
    order = unit.order("mbr")
    assert [lot.id for lot in order.free_lots()] == ["lotB", "lotA"]
    assert order.due(NOW) == []
