"""Set-based writes of many rows: one statement per chunk of rows, not one per row.

An ``executemany`` of an UPDATE or an INSERT sends one statement per row (psycopg pipelines them,
the server still runs each): 66,000 rows cost seconds on PostgreSQL. Here a chunk of rows goes as
a few parameters whatever its size, so no statement comes near a parameter limit (PostgreSQL's
65,535, SQLite's SQLITE_MAX_VARIABLE_NUMBER): PostgreSQL gets one array per column
(``unnest(CAST(:c0 AS type[]), …)``, passed as array literals: psycopg's element-by-element list
adaptation costs more), SQLite one JSON array of the rows (``json_each``, read with ``json_extract``).
Every value goes through its column type's bind processing first, so what is stored is what an
``executemany`` of the same rows would store.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Callable

from sqlalchemy import JSON, String, Table, Text, text
from sqlalchemy.engine import Dialect

CHUNK = 5000


def update_rows(tx, table: Table, key: str, rows: list[dict], *, size: int | None = None) -> None:
    """``UPDATE table SET column = row[column], … WHERE key = row[key]`` for every row (each row names
    the same columns; a key matched by no row of the table changes nothing), ``size`` rows a statement."""
    if not rows:
        return
    columns = tuple(rows[0])
    _refuse_json(table, columns)
    statement = _update(tx.dialect, table, key, columns)
    dialect = tx.session.get_bind().dialect
    size = size or CHUNK
    for start in range(0, len(rows), size):
        tx.session.execute(statement, _params(dialect, table, columns, rows[start:start + size]))


def insert_rows(tx, table: Table, rows: list[dict], *, size: int | None = None) -> None:
    """``INSERT INTO table`` the rows, ``size`` rows a statement, in the order given. Each row names
    every column of the table (no column default is applied here, as an executemany would)."""
    if not rows:
        return
    columns = tuple(rows[0])
    if set(columns) != set(table.c.keys()):
        raise ValueError(f"{table.name}: a row names {sorted(columns)}, not every column")
    _refuse_json(table, columns)
    statement = _insert(tx.dialect, table, columns)
    dialect = tx.session.get_bind().dialect
    size = size or CHUNK
    for start in range(0, len(rows), size):
        tx.session.execute(statement, _params(dialect, table, columns, rows[start:start + size]))


@cache
def _source(dialect: str, table: Table, columns: tuple[str, ...]) -> str:
    """The rows as a table ``v`` with the given columns."""
    if dialect == "postgresql":
        arrays = ", ".join(f"CAST(:c{n} AS {_pg_element(table, name)}[])" for n, name in enumerate(columns))
        return f"unnest({arrays}) AS v({', '.join(columns)})"
    picked = ", ".join(f"json_extract(value, '$[{n}]') AS {name}" for n, name in enumerate(columns))
    return f"(SELECT {picked} FROM json_each(:rows)) AS v"


def _refuse_json(table: Table, columns: tuple[str, ...]) -> None:
    for name in columns:
        if isinstance(table.c[name].type, JSON):
            raise TypeError(f"{table.name}.{name}: a JSON column is not written set-based here (its values "
                            "bind as adapter objects, not text)")


def _pg_element(table: Table, name: str) -> str:
    """The PostgreSQL type of a column's array elements, without a length: an explicit cast to
    ``VARCHAR(n)[]`` would cut a longer value to n characters, where the column itself refuses it (as an
    ``executemany`` would)."""
    from sqlalchemy.dialects import postgresql

    kind = table.c[name].type
    if isinstance(kind, String):
        return "TEXT" if isinstance(kind, Text) else "VARCHAR"
    return kind.compile(dialect=postgresql.dialect())


@cache
def _update(dialect: str, table: Table, key: str, columns: tuple[str, ...]):
    assigned = ", ".join(f"{name} = v.{name}" for name in columns if name != key)
    where = f"{table.name}.{key} = v.{key}"
    if dialect == "postgresql":
        # the keys again as = ANY: the planner probes the key's index instead of hashing the table
        where += f" AND {table.name}.{key} = ANY(CAST(:c{columns.index(key)} AS {_pg_element(table, key)}[]))"
    return text(f"UPDATE {table.name} SET {assigned} FROM {_source(dialect, table, columns)} WHERE {where}")


@cache
def _insert(dialect: str, table: Table, columns: tuple[str, ...]):
    # json_each and unnest give the rows in the order of the array: the order given
    return text(f"INSERT INTO {table.name} ({', '.join(columns)}) "
                f"SELECT {', '.join(f'v.{c}' for c in columns)} FROM {_source(dialect, table, columns)}")


def _params(dialect: Dialect, table: Table, columns: tuple[str, ...], rows: list[dict]) -> dict[str, str]:
    processed = [_column(rows, name, _processor(dialect, table, name), dialect.name == "postgresql")
                 for name in columns]
    if dialect.name == "postgresql":
        return {f"c{n}": "{" + ",".join(values) + "}" for n, values in enumerate(processed)}
    return {"rows": json.dumps(list(zip(*processed)))}


def _column(rows: list[dict], name: str, process: Callable[[Any], Any], pg: bool) -> list:
    """The column's values, bind-processed (PostgreSQL: as elements of an array literal). A pass repeats
    most values (its moment, a status), so each distinct one is processed once."""
    seen: dict = {}
    values = []
    for row in rows:
        value = row[name]
        try:
            values.append(seen[value])
        except KeyError:
            seen[value] = done = _element(process(value)) if pg else process(value)
            values.append(done)
        except TypeError:  # unhashable (a JSON value): processed each time
            values.append(_element(process(value)) if pg else process(value))
    return values


def _identity(value: Any) -> Any:
    return value


@cache
def _processor(dialect: Dialect, table: Table, name: str) -> Callable[[Any], Any]:
    """The column type's bind processing for the dialect, as SQLAlchemy applies it to a parameter."""
    return table.c[name].type.dialect_impl(dialect).bind_processor(dialect) or _identity


def _element(value) -> str:
    """An element of a PostgreSQL array literal: quoted and escaped, None as NULL."""
    if value is None:
        return "NULL"
    text_ = str(value)
    if "\\" in text_ or '"' in text_:
        text_ = text_.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text_ + '"'
