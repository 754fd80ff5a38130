"""``column IN (values)`` as one bound parameter, whatever the number of values.

A plain ``in_`` renders one placeholder per value on every execution (and psycopg
re-parses the long query each time); on the posting path that cost more than the
queries themselves. Here PostgreSQL gets ``column = ANY(:array)`` and SQLite
``column IN (SELECT value FROM json_each(:json))``: one short, cached statement.
"""

from __future__ import annotations

import json
from typing import Iterable

from sqlalchemy import String, any_, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY


def among(dialect: str, column, values: Iterable[str]):
    """The condition ``column`` is one of ``values`` (strings), for the given dialect name."""
    values = list(values)
    if dialect == "postgresql":
        return column == any_(literal(values, ARRAY(String)))
    table = func.json_each(literal(json.dumps(values))).table_valued("value")
    return column.in_(select(table.c.value))
