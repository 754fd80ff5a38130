"""The journal's SQLite writer (the driver's executemany over tuples) stores byte for byte what
SQLAlchemy's own insert of the same rows stores: the same text for instants and dates, the same
defaults for missing values."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, Table, insert

from shared.ledger import journal as journal_module
from tests.factories import journal_workout, make_member, make_partner

MUTABLE = {"lots": ("remaining", "reserved", "expires_at"),
           "holds": ("status", "captured_points", "resolved_entry_id", "resolved_at")}


def test_the_sqlite_writer_stores_what_sqlalchemys_insert_stores(network, monkeypatch):
    if network.db.dialect != "sqlite":
        pytest.skip("the SQLite writer")
    written: list[tuple] = []
    insert_sqlite = journal_module.Journal._insert_sqlite

    def record(self, model, rows):
        if rows:
            written.append((model, [dict(row) for row in rows]))
        return insert_sqlite(self, model, rows)

    monkeypatch.setattr(journal_module.Journal, "_insert_sqlite", record)
    issuer, spender = make_partner(network), make_partner(network, billing="prepaid")
    member = make_member(network, issuer, also_linked_to=(spender,))
    journal_workout(network, issuer, spender, member)
    assert {"entries", "lots", "transfers", "lot_consumptions", "obligation_lines", "holds", "hold_lots"} <= \
        {model.__tablename__ for model, _ in written}

    def compare(tx):
        driver = tx.session.connection().connection.driver_connection
        for n, (model, rows) in enumerate(written):
            table = model.__table__
            columns = [c for c in table.columns if c.name not in MUTABLE.get(table.name, ())]
            shadow = Table(f"shadow_{n}", MetaData(), *[
                Column(c.name, c.type, default=c.default.arg if c.default is not None else None) for c in columns])
            shadow.create(tx.session.connection())
            tx.session.execute(insert(shadow), [{c.name: row[c.name] for c in columns if c.name in row}
                                                for row in rows])
            names = ", ".join(c.name for c in columns)
            key = [c.name for c in table.primary_key.columns]
            order = ", ".join(key)
            expected = driver.execute(f"SELECT {names} FROM shadow_{n} ORDER BY {order}").fetchall()
            keys = [tuple(row[name] for name in key) for row in rows]
            where = " OR ".join(["(" + " AND ".join(f"{name} = ?" for name in key) + ")"] * len(keys))
            stored = driver.execute(f"SELECT {names} FROM {table.name} WHERE {where} ORDER BY {order}",
                                    [value for k in keys for value in k]).fetchall()
            assert stored == expected, table.name
            assert len(stored) == len(rows)

    network.tx(compare)


def test_row_tuples_take_defaults_keep_explicit_nones_and_ignore_other_keys():
    from datetime import datetime, timezone

    from sqlalchemy import Boolean, Integer, String
    from sqlalchemy.dialects import sqlite

    from shared.db.types import UTCDateTime

    table = Table("t_rows", MetaData(), Column("id", String, primary_key=True), Column("reserved", Integer, default=0),
                  Column("at", UTCDateTime), Column("flag", Boolean, default=False))
    model = type("TRows", (), {"__table__": table, "__tablename__": "t_rows"})
    sql, plan = journal_module._sqlite_insert(model, sqlite.dialect())
    assert sql == "INSERT INTO t_rows (id, reserved, at, flag) VALUES (?, ?, ?, ?)"
    at = datetime(2026, 12, 2, 9, 30, tzinfo=timezone.utc)
    rows = [{"id": "a"}, {"id": "b", "reserved": None, "at": at, "flag": True, "not_a_column": 1}]
    assert journal_module.sqlite_rows(plan, rows) == [("a", 0, None, 0), ("b", None, "2026-12-02 09:30:00.000000", 1)]

    one = Table("t_one", MetaData(), Column("id", String, primary_key=True))
    _, single = journal_module._sqlite_insert(type("TOne", (), {"__table__": one, "__tablename__": "t_one"}),
                                              sqlite.dialect())
    assert journal_module.sqlite_rows(single, [{"id": "abc"}]) == [("abc",)]
