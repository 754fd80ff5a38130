"""Lots of equal expiry and age: a burn takes the one made first, never one at random.

Every lot one unit of work issues (a batch, or one earn making a partner lot and a network lot)
has the same issue time and expiry, so ``consumption_key`` falls to the lot id; ids are monotonic
within a process (shared/db/types.py), so the lot made first is the older one. These tests use the
real id source: a deterministic one would hide a random tie."""

from __future__ import annotations

import threading
import types

from sqlalchemy import select

from shared.db import types as dbtypes
from shared.db.types import new_id, new_ids
from shared.errors import PointsAlreadySpent
from shared.ledger.events import Event
from shared.models import ObligationLine
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner, verify_ok

ROUNDS = 16  # a coin toss per round before the fix: 1 in 65536 to pass by luck


def test_a_batch_burn_takes_the_first_earns_lot_so_reversing_that_earn_is_refused(network):
    """A partner's end-of-day file: earn A, earn B, burn, reverse A. Posted one call at a time the
    burn spends A's lot and the reversal is refused; in one batch it must be the same."""
    partner = make_partner(network, "P")
    for n in range(ROUNDS):
        member = make_member(network, partner)
        out = network.post(partner, [Event("earn", f"a{n}", member, 100), Event("earn", f"b{n}", member, 100),
                                     Event("burn", f"c{n}", member, 100),
                                     Event("reversal", f"r{n}", original_reference=f"a{n}")])
        assert out[2]["consumed"] == [{"lot_id": out[0]["lots"][0]["lot_id"], "points": 100}], n
        assert isinstance(out[3], PointsAlreadySpent), (n, out[3])
        assert network.balance(member)["available"] == 100
    verify_ok(network)


def test_an_earns_partner_lot_is_spent_before_its_network_lot(network):
    """One earn makes the partner's lot, then the network campaign's: same expiry, same issue time.
    The partner's lot is the older, so a burn of part of it elsewhere is paid by the partner."""
    issuer = make_partner(network, "Issuer")
    shop = make_partner(network, "Shop")
    network.tx(lambda tx: set_rules(tx, "network", "campaigns: [{id: city, name: City day, starts_on: 2026-11-01, "
                                                   "ends_on: 2026-11-30, bonus_points: 10, funded_by: network}]"))
    for n in range(ROUNDS):
        member = make_member(network, issuer, also_linked_to=(shop,))
        earned = network.earn(issuer, member, f"e{n}", amount=10_000)
        partner_lot, network_lot = earned["lots"]
        assert (partner_lot["funded_by"], network_lot["funded_by"]) == (issuer, "network")
        assert partner_lot["lot_id"] < network_lot["lot_id"]
        burn = network.burn(shop, member, f"b{n}", 5)
        assert burn["consumed"] == [{"lot_id": partner_lot["lot_id"], "points": 5}], n
        payers = network.tx(lambda tx: tx.session.execute(select(ObligationLine.payer).where(
            ObligationLine.entry_id == burn["entry_id"], ObligationLine.kind == "redemption")).scalars().all(),
            readonly=True)
        assert payers == [issuer], n
    verify_ok(network)


def test_ids_made_in_one_millisecond_count_up(monkeypatch):
    now = [1_790_000_000_123_456_789]
    monkeypatch.setattr(dbtypes, "time", types.SimpleNamespace(time_ns=lambda: now[0]))
    monkeypatch.setattr(dbtypes, "_last", [0, -1])
    made = [new_id("lot") for _ in range(1000)] + new_ids("lc", 1000) + [new_id("lot")]
    assert len({i[-28:] for i in made}) == len(made)  # distinct whatever the prefix
    assert {i[-28:-16] for i in made} == {f"{1_790_000_000_123:012x}"}  # all of this millisecond
    suffixes = [int(i[-16:], 16) for i in made]
    assert suffixes == list(range(suffixes[0], suffixes[0] + len(made)))  # each the one before plus one
    # the clock going back does not make an id sort before the last one
    now[0] -= 5_000_000
    assert new_id("lot") > made[-1]
    # a new millisecond: fresh random bits (not the last suffix plus one)
    now[0] += 10_000_000
    later = [new_id("lot") for _ in range(3)]
    assert later[0][-28:-16] == f"{1_790_000_000_128:012x}" and later == sorted(later) and later[0] > made[-1]


def test_a_suffix_about_to_overflow_moves_to_the_next_millisecond(monkeypatch):
    monkeypatch.setattr(dbtypes, "time", types.SimpleNamespace(time_ns=lambda: 5_000_000))
    monkeypatch.setattr(dbtypes, "_last", [5, (1 << 64) - 3])
    made = [new_id("lot") for _ in range(2)] + new_ids("lc", 4)
    assert made[0] == f"lot_{5:012x}{(1 << 64) - 2:016x}" and made[1] == f"lot_{5:012x}{(1 << 64) - 1:016x}"
    assert all(i[-28:-16] == f"{6:012x}" for i in made[2:])
    assert [i[-28:] for i in made] == sorted(i[-28:] for i in made)


def test_threads_sharing_the_process_get_distinct_increasing_ids():
    made: dict[int, list[str]] = {}

    def make(n: int) -> None:
        made[n] = [new_id("ent") for _ in range(2000)]

    threads = [threading.Thread(target=make, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({i for ids in made.values() for i in ids}) == 8000
    assert all(ids == sorted(ids) for ids in made.values())


def test_a_forked_child_does_not_continue_its_parents_sequence(monkeypatch):
    monkeypatch.setattr(dbtypes, "_last", [0, -1])
    new_id("lot")
    assert dbtypes._last != [0, -1]
    dbtypes._forget_after_fork()  # what os.register_at_fork runs in the child
    assert dbtypes._last == [0, -1]
