"""A manifest's ledger position: counted from the last settled cycle's kept one, equal to a full count."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import func, select, text, update

from shared.ledger.verify import verify
from shared.models import CyclePosition, Entry
from shared.settlement.reconcile import verify_directory
from shared.settlement.runs import _larger, ledger_position, settlement_dir
from shared.signing import network_key_id
from tests.db.test_history_plans import captured
from tests.factories import make_member, make_partner, verify_ok


def counted(network, cycle: date) -> dict:
    """The position as the whole ledger gives it: every entry through the cycle counted."""
    def count(tx):
        through, last = tx.session.execute(select(func.count(), func.max(Entry.id)).where(Entry.cycle_date <= cycle)).one()
        in_cycle = tx.session.execute(select(func.count()).where(Entry.cycle_date == cycle)).scalar_one()
        return {"entries_through_cycle": through, "entries_in_cycle": in_cycle, "last_transaction_id": last}
    return network.tx(count, readonly=True)


def manifest_position(network, cycle: date) -> dict:
    return json.loads((settlement_dir(network.settings.data_dir, cycle) / "manifest.json").read_bytes())["ledger_position"]


def days_of_traffic(network, clock, days: int) -> list[date]:
    """``days`` cycles with a few entries each (the third without any; the others' next cycle has begun when they settle), each settled the next day."""
    shop, cafe = make_partner(network), make_partner(network)
    member = make_member(network, shop, also_linked_to=(cafe,))
    cycles = []
    for day in range(days):
        if day != 2:
            for n in range(day + 2):
                network.earn(shop if n % 2 else cafe, member, f"d{day}-e{n}", points=10 + n)
            network.burn(cafe, member, f"d{day}-b", 5)
        cycles.append(network.tx(_today, readonly=True))
        clock.advance(days=1)
        if day != 1:  # the next cycle's, there when this one settles: not in its position
            network.earn(shop, member, f"d{day}-next", points=1)
        network.settle(cycles[-1])
    return cycles


def _today(tx) -> date:
    from shared.ledger.cycles import cycle_date_for
    return cycle_date_for(tx.now, tx.settings)


def test_each_manifest_states_the_full_count_and_later_ones_count_only_their_cycles(network, clock):
    cycles = days_of_traffic(network, clock, 2)
    with captured(network, "max(entries.id)") as sent:
        for cycle in days_of_traffic(network, clock, 3):
            cycles.append(cycle)
    for cycle in cycles:
        assert manifest_position(network, cycle) == counted(network, cycle), cycle
    kept = network.tx(lambda tx: tx.session.execute(select(CyclePosition.cycle_date)).scalars().all(), readonly=True)
    assert sorted(kept) == cycles
    # every count after the first settlement starts after the last kept cycle: none reads from the beginning
    assert len(sent) == 3 and all("entries.cycle_date >" in statement for statement, _ in sent), sent
    verify_ok(network)


def test_a_manifest_recomputed_later_gives_the_same_position(network, clock):
    cycles = days_of_traffic(network, clock, 3)
    keys = {network_key_id(network.signing_key): network.signing_key.public_key()}
    for cycle in cycles:
        assert network.tx(lambda tx: ledger_position(tx, cycle, recount=True), readonly=True) == \
            manifest_position(network, cycle) == counted(network, cycle)
        assert network.tx(lambda tx: verify_directory(tx, settlement_dir(network.settings.data_dir, cycle), keys),
                          readonly=True) == []


def test_a_cycle_settled_before_an_earlier_one_keeps_no_position_until_every_earlier_one_is_closed(network, clock):
    """``pointsnet clearing run --cycle`` may settle a later cycle first: its figures are right, and kept
    only once no earlier cycle is open (the earlier one's settlement keeps its own)."""
    shop = make_partner(network)
    member = make_member(network, shop)
    cycles = []
    for day in range(3):
        network.earn(shop, member, f"d{day}", points=10)
        cycles.append(network.tx(_today, readonly=True))
        clock.advance(days=1)
    network.settle(cycles[0])
    network.settle(cycles[2])  # cycles[1] is still open
    network.settle(cycles[1])
    for cycle in cycles:
        assert manifest_position(network, cycle) == counted(network, cycle), cycle
    kept = network.tx(lambda tx: tx.session.execute(select(CyclePosition.cycle_date)).scalars().all(), readonly=True)
    assert sorted(kept) == cycles[:2]
    verify_ok(network)


def test_the_last_id_is_the_larger_of_the_kept_one_and_the_cycles_as_the_database_orders_them(network):
    for first, second in (("ent_01b", "ent_01a"), ("ent_01a", "ent_01b"), ("ent_02", "ent_10")):
        expected = network.tx(lambda tx: tx.session.execute(text(
            "SELECT max(id) FROM (SELECT :a AS id UNION ALL SELECT :b) t"), {"a": first, "b": second}).scalar_one(),
            readonly=True)
        assert network.tx(lambda tx: _larger(tx, first, second), readonly=True) == expected == max(first, second)


def test_verify_recounts_the_kept_positions(network, clock):
    cycles = days_of_traffic(network, clock, 3)
    network.tx(lambda tx: tx.session.execute(update(CyclePosition).where(CyclePosition.cycle_date == cycles[1])
                                             .values(entries_through_cycle=CyclePosition.entries_through_cycle + 1)))
    assert [(o.check, str(o.subject)[:10]) for o in offences(network)] == [
        ("cycle_position_matches_entries", cycles[1].isoformat())]
    restore = network.tx(lambda tx: tx.session.execute(select(CyclePosition.entries_through_cycle).where(
        CyclePosition.cycle_date == cycles[1])).scalar_one() - 1, readonly=True)
    network.tx(lambda tx: tx.session.execute(update(CyclePosition).where(CyclePosition.cycle_date == cycles[1])
                                             .values(entries_through_cycle=restore)))
    later = network.tx(lambda tx: tx.session.execute(select(Entry.id).where(Entry.cycle_date == cycles[1])
                                                     .limit(1)).scalar_one(), readonly=True)
    network.tx(lambda tx: tx.session.execute(update(CyclePosition).where(CyclePosition.cycle_date == cycles[0])
                                             .values(last_transaction_id=later)))
    # a last id of a later cycle
    assert [(o.check, str(o.subject)[:10]) for o in offences(network)] == [
        ("cycle_position_matches_entries", cycles[0].isoformat())]
    network.tx(lambda tx: tx.session.execute(text("UPDATE cycle_positions SET last_transaction_id = 'ent_0'")))
    found = offences(network)
    assert {o.check for o in found} == {"cycle_position_matches_entries"} and len(found) == 3


def test_reconciliation_counts_the_entries_and_trusts_no_kept_position(network, clock):
    """A kept position edited by hand passes into the next manifest; reconciling that manifest finds it."""
    cycles = days_of_traffic(network, clock, 2)
    network.tx(lambda tx: tx.session.execute(update(CyclePosition).where(CyclePosition.cycle_date == cycles[-1])
                                             .values(entries_through_cycle=CyclePosition.entries_through_cycle + 1)))
    later = days_of_traffic(network, clock, 1)[0]
    assert manifest_position(network, later)["entries_through_cycle"] == \
        counted(network, later)["entries_through_cycle"] + 1
    keys = {network_key_id(network.signing_key): network.signing_key.public_key()}
    findings = network.tx(lambda tx: verify_directory(tx, settlement_dir(network.settings.data_dir, later), keys),
                          readonly=True)
    assert ("recomputation", "manifest.json") in {(f.check, f.subject) for f in findings}, findings


def offences(network):
    return network.tx(verify, readonly=True).offences
