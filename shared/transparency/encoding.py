"""The canonical encoding of a ledger entry: what a leaf of the tree commits to.

An entry's leaf covers the entry row, its transfers (the postings), its lot
consumptions, the lots it created (funder and points, not the mutable remaining)
and its obligation lines (the money). Every field is a netstring-like
``<byte length>:<utf-8 bytes>,`` (NULL is ``-``), so no value can be confused with
a separator; records end with a newline. Children are ordered by id (code point
order; ``COLLATE "C"`` in SQL), consumptions by ``seq``. docs/verifiable-ledger.md
gives the format for auditors who re-implement it.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Iterable, Sequence

from sqlalchemy import func, select, text

from shared.db.database import Tx
from shared.models import Entry, Lot, LotConsumption, ObligationLine, Transfer
from shared.transparency.merkle import leaf_hash

VERSION = b"pointsnet-leaf-v1\n"
CHUNK = 500

ENTRY_FIELDS = ("id", "kind", "partner_id", "member_id", "reference", "points", "cycle_date", "posted_at",
                "occurred_at", "original_entry_id", "hold_id")
TRANSFER_FIELDS = ("id", "debit_account", "credit_account", "points")
CONSUMPTION_FIELDS = ("seq", "id", "lot_id", "points")
LOT_FIELDS = ("id", "member_id", "funder_partner_id", "billing", "contract_id", "points", "issued_at")
LINE_FIELDS = ("id", "cycle_date", "payer", "payee", "kind", "points", "amount_micro", "contract_id", "lot_id",
               "original_line_id")


def field(value) -> bytes:
    if value is None:
        return b"-"
    if isinstance(value, datetime):
        text = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = str(value)
    data = text.encode("utf-8")
    return b"%d:%s," % (len(data), data)


def record(tag: bytes, values: Iterable) -> bytes:
    return tag + b" " + b"".join(field(v) for v in values) + b"\n"


def encode_entry(entry: dict, transfers: Sequence[dict], consumptions: Sequence[dict], lots: Sequence[dict],
                 lines: Sequence[dict]) -> bytes:
    out = [VERSION, record(b"E", (entry[f] for f in ENTRY_FIELDS))]
    out += [record(b"T", (t[f] for f in TRANSFER_FIELDS)) for t in sorted(transfers, key=lambda t: t["id"])]
    out += [record(b"C", (c[f] for f in CONSUMPTION_FIELDS)) for c in sorted(consumptions, key=lambda c: c["seq"])]
    out += [record(b"L", (l[f] for f in LOT_FIELDS)) for l in sorted(lots, key=lambda l: l["id"])]
    out += [record(b"O", (o[f] for f in LINE_FIELDS)) for o in sorted(lines, key=lambda o: o["id"])]
    return b"".join(out)


def _column(model, name: str):
    """A field's column; a lot's member is the one it was issued to (a merge moves lots: ``merged_from``)."""
    if model is Lot and name == "member_id":
        return func.coalesce(Lot.merged_from, Lot.member_id)
    return getattr(model, name)


def _rows(tx: Tx, model, fields: Sequence[str], ids: list[str]) -> dict[str, list[dict]]:
    columns = [_column(model, f) for f in fields]
    by_entry: dict[str, list[dict]] = {}
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        for row in tx.session.execute(select(model.entry_id, *columns).where(model.entry_id.in_(part))):
            by_entry.setdefault(row[0], []).append(dict(zip(fields, row[1:])))
    return by_entry


# what an entry whose stored rows cannot be read as their types encodes to: no leaf's bytes (those begin with
# VERSION), so its leaf is named as not matching rather than the check stopping
UNREADABLE = b"unreadable\n"


def encode_entries(tx: Tx, entry_ids: Sequence[str]) -> dict[str, bytes]:
    """The canonical encoding of each entry that exists (missing ids are simply absent). A stored value that is
    not of its column's type (a time that is no time: only a hand-made edit writes one) makes its entry
    ``UNREADABLE``; the others of its batch are encoded as ever (the batch halved until it is found)."""
    ids = list(entry_ids)
    try:
        return _encode_entries(tx, ids)
    except (ValueError, TypeError, OverflowError):
        if len(ids) == 1:
            return {ids[0]: UNREADABLE}
        half = len(ids) // 2
        return encode_entries(tx, ids[:half]) | encode_entries(tx, ids[half:])


def _encode_entries(tx: Tx, ids: list[str]) -> dict[str, bytes]:
    entries: dict[str, dict] = {}
    columns = [getattr(Entry, f) for f in ENTRY_FIELDS]
    for start in range(0, len(ids), CHUNK):
        for row in tx.session.execute(select(*columns).where(Entry.id.in_(ids[start:start + CHUNK]))):
            entries[row[0]] = dict(zip(ENTRY_FIELDS, row))
    transfers = _rows(tx, Transfer, TRANSFER_FIELDS, ids)
    consumptions = _rows(tx, LotConsumption, CONSUMPTION_FIELDS, ids)
    lots = _rows(tx, Lot, LOT_FIELDS, ids)
    lines = _rows(tx, ObligationLine, LINE_FIELDS, ids)
    return {eid: encode_entry(e, transfers.get(eid, ()), consumptions.get(eid, ()), lots.get(eid, ()),
                              lines.get(eid, ())) for eid, e in entries.items()}


def hash_entries(tx: Tx, entry_ids: Sequence[str]) -> dict[str, bytes]:
    return {eid: leaf_hash(data) for eid, data in encode_entries(tx, entry_ids).items()}


# -- the same encoding computed by PostgreSQL, hashed with its sha256() --------------------------

_TIME = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"


# What to_char writes for a time and a date of the years 1-9999 (999 is written 0999): verify's fast
# path writes these lengths instead of measuring every value (see set_leaf_hashes)
_WIDTHS = {"time": 27, "date": 10}


def _sql_field(expression: str, kind: str = "text", nullable: bool = True, fast: bool = False) -> str:
    """The field as arguments of ``concat()``; a column that cannot be NULL skips the NULL test."""
    # to_char writes no sign for a year before the common era: such a value (only a hand-made edit writes one)
    # is marked, so that it never encodes as the same instant of the common era does
    if kind in ("time", "date"):
        first, pattern = (("TIMESTAMP '0001-01-01'", _TIME) if kind == "time"
                          else ("DATE '0001-01-01'", "'YYYY-MM-DD'"))
        value = f"(CASE WHEN {expression} < {first} THEN 'BC ' ELSE '' END || to_char({expression}, {pattern}))"
    else:  # text, and integers (whose ::text is Python's str())
        value = f"({expression})::text"
    length = f"'{_WIDTHS[kind]}'" if fast and kind in _WIDTHS else f"octet_length({value})"
    if not nullable:
        return f"{length}, ':', {value}, ','"
    return f"(CASE WHEN {expression} IS NULL THEN '-' ELSE {length} || ':' || {value} || ',' END)"


_KINDS = {"points": "int", "seq": "int", "amount_micro": "int", "cycle_date": "date", "posted_at": "time",
          "occurred_at": "time", "issued_at": "time"}


def _sql_expression(model, alias: str, name: str) -> str:
    """``_column`` in SQL: a lot's member is the one it was issued to (never NULL: member_id is not)."""
    if model is Lot and name == "member_id":
        return f"COALESCE({alias}.merged_from, {alias}.member_id)"
    return f"{alias}.{name}"


def _sql_record(tag: str, alias: str, model, fields: Sequence[str], fast: bool = False) -> str:
    """One record, built by a single ``concat()`` (one allocation, not one per ``||``)."""
    columns = model.__table__.c
    return (f"concat('{tag} ', " + ", ".join(_sql_field(_sql_expression(model, alias, f), _KINDS.get(f, "text"),
                                                        columns[f].nullable, fast)
                                             for f in fields) + ", chr(10))")


_CHILDREN = (("T", "transfers", Transfer, TRANSFER_FIELDS, 'c.id COLLATE "C"'),
             ("C", "lot_consumptions", LotConsumption, CONSUMPTION_FIELDS, "c.seq"),
             ("L", "lots", Lot, LOT_FIELDS, 'c.id COLLATE "C"'),
             ("O", "obligation_lines", ObligationLine, LINE_FIELDS, 'c.id COLLATE "C"'))


def _sql_children(tag: str, table: str, model, fields: Sequence[str], order: str) -> str:
    return (f"COALESCE((SELECT string_agg({_sql_record(tag, 'c', model, fields)}, '' ORDER BY {order}) "
            f"FROM {table} c WHERE c.entry_id = e.id), '')")


_LEAF_HASH = (f"sha256('\\x00'::bytea || convert_to('pointsnet-leaf-v1' || chr(10) || "
              f"{_sql_record('E', 'e', Entry, ENTRY_FIELDS)} || "
              + " || ".join(_sql_children(*child) for child in _CHILDREN) + ", 'UTF8'))")


def _sql_grouped(tag: str, table: str, model, fields: Sequence[str], order: str, where: str, fast: bool) -> str:
    record = _sql_record(tag, "c", model, fields, fast)
    if fast:  # aggregated in the order of a sorted subquery (see set_leaf_hashes)
        return (f"(SELECT c.entry_id, string_agg({record}, '') AS s "
                f"FROM (SELECT * FROM {table} c {where} ORDER BY c.entry_id, {order}) c GROUP BY c.entry_id)")
    return f"(SELECT c.entry_id, string_agg({record}, '' ORDER BY {order}) AS s FROM {table} c {where} GROUP BY c.entry_id)"


def set_leaf_hashes(where_entries: str = "", where_children: str = "", *, fast: bool = False) -> str:
    """``(entry_id, leaf_hash)`` of many entries at once, set-based: each child table is read once and
    grouped by entry (instead of four index look-ups per entry), then joined to the entries. The bytes
    hashed are exactly ``_LEAF_HASH``'s (and the Python encoder's); the filters restrict the entries and
    their children alike (``e.`` and ``c.`` name the rows).

    ``fast`` is verify's fast path, a tenth or two cheaper, exact for every sound ledger and able only
    to fail to match otherwise, never to match what the exact form would not: each group's rows come
    in order from a sorted subquery instead of a sort per group for ``string_agg(… ORDER BY …)``
    (PostgreSQL aggregates rows in the order they come when one process aggregates them: verify runs
    without parallel workers), and a time's or date's length is written as 27 or 10 instead of
    measured (what ``to_char`` gives for years 1-9999; for a later one the field's bytes cannot
    parse as the canonical encoding — a length that is not its text's, and none of these texts holds a
    comma — so they cannot equal any leaf's). Verify then rebuilds the tree with the exact form to
    name what differs. Sealing, which writes leaves, uses the exact form."""
    joins = "\n    ".join(
        f"LEFT JOIN {_sql_grouped(tag, table, model, fields, order, where_children, fast)} c{n} "
        f"ON c{n}.entry_id = e.id" for n, (tag, table, model, fields, order) in enumerate(_CHILDREN))
    children = " || ".join(f"COALESCE(c{n}.s, '')" for n in range(len(_CHILDREN)))
    return f"""SELECT e.id AS entry_id,
        sha256('\\x00'::bytea || convert_to('pointsnet-leaf-v1' || chr(10) || {_sql_record('E', 'e', Entry, ENTRY_FIELDS, fast)}
               || {children}, 'UTF8')) AS leaf_hash
    FROM entries e
    {joins}
    {where_entries}"""


def bad_leaves_sql(low: bool = False, high: bool = False) -> str:
    """Sealed leaves whose entry is gone or no longer hashes to the leaf (verify's fast path: on a sound
    ledger it returns nothing); with ``low``/``high``, only leaves whose entry id is ``>= :low`` /
    ``< :high``, so ranges of ids split the work (entries and their children read by index range)."""
    def within(column: str) -> list[str]:
        return [f"{column} >= :low"] * low + [f"{column} < :high"] * high

    def where(column: str) -> str:
        return f"WHERE {' AND '.join(within(column))}" if low or high else ""

    bad = " AND ".join(["(h.entry_id IS NULL OR h.leaf_hash <> l.leaf_hash)", *within("l.entry_id")])
    return f"""
    SELECT l.leaf_index FROM ledger_leaves l
    LEFT JOIN ({set_leaf_hashes(where("e.id"), where("c.entry_id"), fast=True)}) h ON h.entry_id = l.entry_id
    WHERE {bad} LIMIT 1
"""


# Stored leaves in index order with the leaf hash PostgreSQL recomputes from the entry (verify).
LEAVES_SQL = f"""
    SELECT l.leaf_index, l.entry_id, l.leaf_hash, e.id IS NOT NULL AS present, {_LEAF_HASH} AS recomputed
    FROM ledger_leaves l LEFT JOIN entries e ON e.id = l.entry_id
    WHERE l.leaf_index > :after ORDER BY l.leaf_index LIMIT :limit
"""

# The leaf hashes of the given entries (sealing).
ENTRY_HASHES_SQL = set_leaf_hashes("WHERE e.id = ANY(CAST(:ids AS text[]))",
                                   "WHERE c.entry_id = ANY(CAST(:ids AS text[]))")


def sql_hash_entries(tx: Tx, entry_ids: Sequence[str]) -> dict[str, bytes]:
    """``hash_entries`` computed inside PostgreSQL: the same bytes, only the hashes cross the wire."""
    rows = tx.session.execute(text(ENTRY_HASHES_SQL), {"ids": list(entry_ids)})
    return {entry_id: bytes(h) for entry_id, h in rows}
