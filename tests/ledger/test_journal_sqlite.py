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
