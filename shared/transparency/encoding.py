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

from sqlalchemy import select, text

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


def _rows(tx: Tx, model, fields: Sequence[str], ids: list[str]) -> dict[str, list[dict]]:
    columns = [getattr(model, f) for f in fields]
    by_entry: dict[str, list[dict]] = {}
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        for row in tx.session.execute(select(model.entry_id, *columns).where(model.entry_id.in_(part))):
            by_entry.setdefault(row[0], []).append(dict(zip(fields, row[1:])))
    return by_entry


def encode_entries(tx: Tx, entry_ids: Sequence[str]) -> dict[str, bytes]:
    """The canonical encoding of each entry that exists (missing ids are simply absent)."""
    ids = list(entry_ids)
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


def _sql_field(expression: str, kind: str = "text") -> str:
    if kind == "time":
        value = f"to_char({expression}, {_TIME})"
    elif kind == "date":
        value = f"to_char({expression}, 'YYYY-MM-DD')"
    else:  # text, and integers (whose ::text is Python's str())
        value = f"({expression})::text"
    return f"(CASE WHEN {expression} IS NULL THEN '-' ELSE octet_length({value}) || ':' || {value} || ',' END)"


_KINDS = {"points": "int", "seq": "int", "amount_micro": "int", "cycle_date": "date", "posted_at": "time",
          "occurred_at": "time", "issued_at": "time"}


def _sql_record(tag: str, alias: str, fields: Sequence[str]) -> str:
    return f"'{tag} ' || " + " || ".join(_sql_field(f"{alias}.{f}", _KINDS.get(f, "text")) for f in fields) \
        + " || chr(10)"


def _sql_children(tag: str, table: str, fields: Sequence[str], order: str) -> str:
    return (f"COALESCE((SELECT string_agg({_sql_record(tag, 'c', fields)}, '' ORDER BY {order}) "
            f"FROM {table} c WHERE c.entry_id = e.id), '')")


_LEAF_HASH = f"""sha256('\\x00'::bytea || convert_to('pointsnet-leaf-v1' || chr(10) || {_sql_record('E', 'e', ENTRY_FIELDS)}
               || {_sql_children('T', 'transfers', TRANSFER_FIELDS, 'c.id COLLATE "C"')}
               || {_sql_children('C', 'lot_consumptions', CONSUMPTION_FIELDS, 'c.seq')}
               || {_sql_children('L', 'lots', LOT_FIELDS, 'c.id COLLATE "C"')}
               || {_sql_children('O', 'obligation_lines', LINE_FIELDS, 'c.id COLLATE "C"')}, 'UTF8'))"""

def _sql_grouped(tag: str, table: str, fields: Sequence[str], order: str, where: str) -> str:
    return (f"(SELECT c.entry_id, string_agg({_sql_record(tag, 'c', fields)}, '' ORDER BY {order}) AS s "
            f"FROM {table} c {where} GROUP BY c.entry_id)")


def set_leaf_hashes(where_entries: str = "", where_children: str = "") -> str:
    """``(entry_id, leaf_hash)`` of many entries at once, set-based: each child table is read once and
    grouped by entry (instead of four index look-ups per entry), then joined to the entries. The bytes
    hashed are exactly ``_LEAF_HASH``'s (and the Python encoder's); the filters restrict the entries and
    their children alike (``e.`` and ``c.`` name the rows)."""
    return f"""SELECT e.id AS entry_id,
        sha256('\\x00'::bytea || convert_to('pointsnet-leaf-v1' || chr(10) || {_sql_record('E', 'e', ENTRY_FIELDS)}
               || COALESCE(t.s, '') || COALESCE(cs.s, '') || COALESCE(lt.s, '') || COALESCE(ol.s, ''), 'UTF8'))
            AS leaf_hash
    FROM entries e
    LEFT JOIN {_sql_grouped('T', 'transfers', TRANSFER_FIELDS, 'c.id COLLATE "C"', where_children)} t
        ON t.entry_id = e.id
    LEFT JOIN {_sql_grouped('C', 'lot_consumptions', CONSUMPTION_FIELDS, 'c.seq', where_children)} cs
        ON cs.entry_id = e.id
    LEFT JOIN {_sql_grouped('L', 'lots', LOT_FIELDS, 'c.id COLLATE "C"', where_children)} lt ON lt.entry_id = e.id
    LEFT JOIN {_sql_grouped('O', 'obligation_lines', LINE_FIELDS, 'c.id COLLATE "C"', where_children)} ol
        ON ol.entry_id = e.id
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
    LEFT JOIN ({set_leaf_hashes(where("e.id"), where("c.entry_id"))}) h ON h.entry_id = l.entry_id
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
