"""Migration 0038: an open ``cycles`` row before the network's first cycle, left by an older merge,
erasure or buy-out on a network without an entry, is removed when nothing refers to it. A row anything
refers to, a closed one and the open cycles from the first on are never touched. Neither kind keeps a
settlement from keeping its ledger position: an open row before the first cycle can gain no entry
(tests/clearing/test_stray_open_cycle_positions.py)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import insert, select

from shared.models import Cycle, CyclePosition, Termination
from tests.db.test_migrations import _migrate
from tests.factories import make_member, make_partner

CYCLE = date(2026, 11, 20)  # the clock's first day: the network's first cycle
STRAY, REFERRED, CLOSED = date(2026, 11, 18), date(2026, 11, 17), date(2026, 11, 16)


def cycle_rows(network) -> dict[date, str]:
    return dict(network.tx(lambda tx: tx.session.execute(select(Cycle.cycle_date, Cycle.status)).all(), readonly=True))


def kept_positions(network) -> list[date]:
    return network.tx(lambda tx: list(tx.session.execute(select(CyclePosition.cycle_date)
                                                         .order_by(CyclePosition.cycle_date)).scalars()), readonly=True)


def test_an_open_row_before_the_first_cycle_that_nothing_refers_to_is_removed(network, clock, database_url):
    coffee = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1", issuance_fee="0.1",
                          redemption_fee_rate="0.05")
    bystander = make_partner(network, "BookMart", billing="postpaid", point_value="1", issuance_fee="0.1",
                             redemption_fee_rate="0.05")
    network.earn(coffee, make_member(network, coffee), "coffee-1", points=100)

    def older_release(tx):  # what a merge, erasure or buy-out on the network before its first entry left
        tx.session.execute(insert(Cycle.__table__), [
            {"cycle_date": STRAY, "status": "open"}, {"cycle_date": REFERRED, "status": "open"},
            {"cycle_date": CLOSED, "status": "closed", "closed_at": datetime(2026, 11, 17, tzinfo=timezone.utc)}])
        tx.session.execute(insert(Termination.__table__).values(
            partner_id=bystander, final_cycle=REFERRED, settlement="keep_paying",
            recorded_at=datetime(2026, 11, 17, tzinfo=timezone.utc)))
    network.tx(older_release)
    clock.advance(days=1)
    network.settle(CYCLE)
    assert kept_positions(network) == [CYCLE]  # the open rows before it do not keep it from being kept

    _migrate(database_url, "0037", down=True)
    _migrate(database_url, "head")
    assert cycle_rows(network) == {REFERRED: "open", CLOSED: "closed", CYCLE: "closed"}

    network.earn(coffee, make_member(network, coffee), "coffee-2", points=100)
    clock.advance(days=1)
    network.settle(date(2026, 11, 21))
    assert kept_positions(network) == [CYCLE, date(2026, 11, 21)]  # REFERRED stands, and holds nothing back
    assert cycle_rows(network)[date(2026, 11, 21)] == "closed"


def test_the_open_cycle_and_a_network_without_an_entry(network, clock, database_url):
    """Before any entry no open row is needed (the day's first writer makes it): one is removed. With
    entries, the open cycles from the first on stay, today's included."""
    coffee = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1", issuance_fee="0.1",
                          redemption_fee_rate="0.05")
    network.tx(lambda tx: tx.session.execute(insert(Cycle.__table__).values(cycle_date=STRAY, status="open")))
    _migrate(database_url, "0037", down=True)
    _migrate(database_url, "head")
    assert cycle_rows(network) == {}

    network.earn(coffee, make_member(network, coffee), "coffee-1", points=100)
    clock.advance(days=1)
    network.earn(coffee, make_member(network, coffee), "coffee-2", points=100)
    network.settle(CYCLE)
    _migrate(database_url, "0037", down=True)
    _migrate(database_url, "head")
    assert cycle_rows(network) == {CYCLE: "closed", date(2026, 11, 21): "open"}
    assert kept_positions(network) == [CYCLE]


def test_every_table_that_names_a_cycle_is_checked():
    """A row is removed only when no table names its day: each column that refers to ``cycles`` (by a
    foreign key or by a cycle's date) is one the migration looks in."""
    from importlib import util

    from shared.db.migrate import MIGRATIONS
    from shared.models import Base

    spec = util.spec_from_file_location("m0038", MIGRATIONS / "versions" / "0038_stray_open_cycles.py")
    migration = util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    naming = {(table.name, column.name) for table in Base.metadata.sorted_tables for column in table.columns
              if table.name != "cycles" and (column.name in ("cycle_date", "final_cycle") or any(
                  fk.target_fullname == "cycles.cycle_date" for fk in column.foreign_keys))
              and not any(fk.column.table.name not in ("cycles",) for fk in column.foreign_keys)}
    assert ("terminations", "final_cycle") in naming and ("obligation_lines", "cycle_date") in naming
    for table, column in naming:
        assert f"FROM {table} " in migration.STRAY and f".{column} = c.cycle_date" in migration.STRAY, (table, column)
