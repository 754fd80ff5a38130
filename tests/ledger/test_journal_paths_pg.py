"""The journal's two ways of writing on PostgreSQL — a pipeline of INSERTs for a small unit, COPY and
array UPDATEs for a batch — write exactly the rows the journal built, column for column."""

from __future__ import annotations

import pytest
from sqlalchemy import select, tuple_

from shared.ledger import journal as journal_module
from shared.models import Lot, Member
from tests.factories import journal_workout, make_member, make_partner, verify_ok

pytestmark = pytest.mark.postgres
# Columns that later operations in the test change (checked through balances and verify instead).
MUTABLE = {"lots": ("remaining", "reserved", "expires_at"),
           "holds": ("status", "captured_points", "resolved_entry_id", "resolved_at")}


@pytest.fixture
def written(monkeypatch):
    """Every (table, rows) the journal hands to either writer, as the database must hold them."""
    seen: list[tuple] = []
    pipelined, copy = journal_module.Journal._write_pipelined, journal_module.Journal._copy

    def record_pipelined(self, tables, updates, **options):
        seen.extend((model, rows) for model, rows in tables if rows)
        return pipelined(self, tables, updates, **options)

    def record_copy(self, model, rows):
        if rows:
            seen.append((model, rows))
        return copy(self, model, rows)

    monkeypatch.setattr(journal_module.Journal, "_write_pipelined", record_pipelined)
    monkeypatch.setattr(journal_module.Journal, "_copy", record_copy)
    return seen


def _stored(network, model, rows: list[dict]) -> dict[tuple, dict]:
    """The rows as stored, by primary key."""
    table = model.__table__
    key = [column.name for column in table.primary_key.columns]
    wanted = {tuple(row[name] for name in key) for row in rows}

    def read(tx):
        found = tx.session.execute(select(table).where(tuple_(*table.primary_key.columns).in_(wanted)))
        return {tuple(row[name] for name in key): dict(row) for row in found.mappings()}

    return network.tx(read, readonly=True), key


@pytest.mark.parametrize("path", ["pipeline", "copy"])
def test_both_writers_store_exactly_the_journals_rows(network, monkeypatch, written, path):
    monkeypatch.setattr(journal_module, "PIPELINE_ROWS", 10_000 if path == "pipeline" else 0)
    issuer, spender = make_partner(network), make_partner(network)
    member = make_member(network, issuer, also_linked_to=(spender,))
    journal_workout(network, issuer, spender, member)

    tables = {model.__tablename__ for model, _ in written}
    assert {"entries", "lots", "transfers", "lot_consumptions", "obligation_lines", "holds"} <= tables
    for model, rows in written:
        stored, key = _stored(network, model, rows)
        assert len(stored) == len(rows), model.__tablename__
        for row in rows:
            found = stored[tuple(row[name] for name in key)]
            for name, value in row.items():
                if name in MUTABLE.get(model.__tablename__, ()) or name not in found:
                    continue
                assert found[name] == value, (model.__tablename__, name)
    # the updates: balances and lots as the operations left them, and the ledger sound
    balance = network.balance(member)
    assert balance["available"] == 300 + 200 - 350 - 60 + 50 + sum(10 + n for n in range(5))
    assert balance["held"] == 0
    lots = network.tx(lambda tx: tx.session.execute(select(Lot.remaining).where(Lot.member_id == member))
                      .scalars().all(), readonly=True)
    assert sum(lots) == balance["available"]
    stored_member = network.tx(lambda tx: tx.session.get(Member, member), readonly=True)
    assert (stored_member.available, stored_member.held) == (balance["available"], 0)
    verify_ok(network)
