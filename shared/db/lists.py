"""``column IN (values)`` as one bound parameter, whatever the number of values.

A plain ``in_`` renders one placeholder per value on every execution (and psycopg
re-parses the long query each time); on the posting path that cost more than the
queries themselves. Here PostgreSQL gets ``column = ANY(:array)`` and SQLite
``column IN (SELECT value FROM json_each(:json))``: one short, cached statement.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Callable, Iterable, TypeVar

from sqlalchemy import String, any_, bindparam, func, literal, select
from sqlalchemy.types import UserDefinedType

T = TypeVar("T")
CHUNK = 5000


class VarcharArray(UserDefinedType):
    """A ``varchar[]`` parameter given as its text literal (``pg_array``), typed at bind time
    (``$1::VARCHAR[]``), so the server parses it once and index scans can use it."""

    cache_ok = True
    render_bind_cast = True

    def get_col_spec(self, **_kw) -> str:
        return "VARCHAR[]"

    def bind_processor(self, dialect):
        return None


def pg_array(values: Iterable) -> str:
    """A PostgreSQL array literal (``'{"a","b"}'``) of strings, integers or naive timestamps, to pass
    as one text parameter and ``CAST`` in SQL: psycopg's own list adaptation dumps element by
    element in Python and cost more than the statements it fed. Every element is quoted and
    escaped, so any text (commas, braces, quotes) is safe."""
    return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def among(dialect: str, column, values: Iterable[str]):
    """The condition ``column`` is one of ``values`` (strings), for the given dialect name."""
    values = list(values)
    if dialect == "postgresql":
        return column == any_(literal(pg_array(values), VarcharArray()))
    table = func.json_each(literal(json.dumps(values))).table_valued("value")
    return column.in_(select(table.c.value))


def among_bound(dialect: str, column, name: str):
    """``among`` with the list left as the bound parameter ``name`` (its value: ``bound_list``), for a
    statement built once: building a statement on every call cost more CPU than running it."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=VarcharArray()))
    table = func.json_each(bindparam(name, type_=String())).table_valued("value")
    return column.in_(select(table.c.value))


def bound_list(dialect: str, values: Iterable[str]) -> str:
    """The value of an ``among_bound`` parameter."""
    values = list(values)
    return pg_array(values) if dialect == "postgresql" else json.dumps(values)


def per_dialect(build: Callable[..., T]) -> Callable[..., T]:
    """``build(dialect, ...)`` run once per dialect name (and further arguments): a statement built
    once, then only executed."""
    return cache(build)


def chunks(values: Iterable[str], size: int = CHUNK):
    """The distinct values in sorted order, ``size`` at a time."""
    values = sorted(set(values))
    for start in range(0, len(values), size):
        yield values[start:start + size]


def among_rows(tx, statement, ids: Iterable[str], *, size: int = CHUNK, **params):
    """The rows of ``statement`` (built once, its list of ids ``among_bound(…, "ids")``) for ``ids``,
    ``size`` at a time in id order (the order members are locked in); ``params``: its other parameters."""
    for chunk in chunks(ids, size):
        yield from tx.session.execute(statement, {"ids": bound_list(tx.dialect, chunk), **params})
