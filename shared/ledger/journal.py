"""A unit of work's pending ledger rows, written set-based: one statement per table.

Operations change in-memory state (locked members, loaded lots) and append rows
here; ``flush`` writes them in foreign-key order. On PostgreSQL a batch writes each
table with one ``COPY`` and each update with one statement over arrays; a small unit
(a single request) sends the same rows as INSERTs in one pipeline, one round trip.
On SQLite each table is one executemany of the driver's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from operator import itemgetter
from typing import Any, Callable

import orjson
from sqlalchemy import text

from shared.db.database import Tx
from shared.db.lists import pg_array
from shared.db.types import new_id
from shared.ledger.rules import Line, LotState
from shared.models import CampaignAward, Entry, Hold, HoldLot, Lot, LotConsumption, ObligationLine, Transfer
from shared.observability import count_entries
from shared.webhooks.outbox import ACTIVE_ENDPOINTS_SQL, needs_endpoints, record_ledger_entries

CHUNK = 5000
_ADD_TO_CAMPAIGN_TOTAL = text("UPDATE campaign_totals SET points = points + :p WHERE campaign = :k")
_ADD_TO_FLOAT_DRAWN = text("UPDATE partner_limits SET float_drawn_micro = float_drawn_micro + :a "
                           "WHERE partner_id = :k AND float_drawn_micro IS NOT NULL")
# Up to this many rows in all, PostgreSQL gets them in one pipeline of INSERTs; more go by COPY.
PIPELINE_ROWS = 100


def _plain(value: Any) -> Any:
    """What COPY writes: UTC instants as naive UTC timestamps, like the UTCDateTime column type."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


@dataclass
class MemberState:
    id: str
    available: int
    held: int
    delta_available: int = 0
    delta_held: int = 0
    # what is due on the member but not written yet (``shared.ledger.due.load_due``); None: nothing
    due: Any = field(default=None, repr=False, compare=False)

    def change(self, available: int = 0, held: int = 0) -> None:
        self.available += available
        self.held += held
        self.delta_available += available
        self.delta_held += held

    def balance(self) -> dict[str, int]:
        """The balance an answer or a webhook gives: as a spend now would find it — what the unit of work
        has made of the stored balance, less points past their expiry and with holds past their timeout
        released, where the unit read them (``load_due``), though nothing writes that yet."""
        if self.due is None:
            return {"available": self.available, "held": self.held}
        available, held = self.due.applied(self.available, self.held)
        return {"available": available, "held": held}


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def stored_json(value: Any) -> str:
    """An entry's request or result as stored: the same JSON value as ``canonical_json`` (sorted keys,
    instants as ``str`` gives them), written by orjson; only ever read back as JSON, never hashed."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON).decode()
    except TypeError:  # an integer beyond 64 bits, a non-string key: the standard library copes
        return canonical_json(value)


@dataclass
class Journal:
    tx: Tx
    cycle_date: date
    entries: list[dict] = field(default_factory=list)
    transfers: list[dict] = field(default_factory=list)
    new_lots: list[LotState] = field(default_factory=list)
    consumptions: list[dict] = field(default_factory=list)
    lines: list[dict] = field(default_factory=list)
    holds: list[dict] = field(default_factory=list)
    hold_lots: list[dict] = field(default_factory=list)
    hold_resolutions: list[dict] = field(default_factory=list)
    campaign_awards: list[dict] = field(default_factory=list)
    lots: dict[str, LotState] = field(default_factory=dict)
    members: dict[str, MemberState] = field(default_factory=dict)
    # who is told of each change to a lot (``pending``): the members' lists of spend_order.py, due.py's ``Due``
    lot_watchers: dict[str, list] = field(default_factory=dict)  # lot id -> its watchers
    hold_watchers: dict[str, list] = field(default_factory=dict)  # hold id -> the Dues to tell of its resolution
    _seq: dict[str, int] = field(default_factory=dict)

    def entry(self, kind: str, points: int, *, partner_id: str | None = None, member_id: str | None = None,
              reference: str | None = None, occurred_at=None, original_entry_id: str | None = None,
              hold_id: str | None = None, request: dict | None = None) -> dict:
        row = {
            "id": new_id("ent"), "kind": kind, "partner_id": partner_id, "member_id": member_id,
            "reference": reference, "points": points, "cycle_date": self.cycle_date,
            "posted_at": self.tx.now, "occurred_at": occurred_at, "original_entry_id": original_entry_id,
            "hold_id": hold_id, "request": request or {}, "result": {},
        }
        self.entries.append(row)
        return row

    def transfer(self, entry: dict, debit: str, credit: str, points: int) -> None:
        if points:
            self.transfers.append({"id": new_id("trf"), "entry_id": entry["id"], "debit_account": debit,
                                   "credit_account": credit, "points": points})

    def new_lot(self, lot: LotState) -> None:
        lot.is_new = True
        self.lots[lot.id] = lot
        self.new_lots.append(lot)

    def move(self, entry: dict, lot: LotState, points: int) -> None:
        """Take ``points`` from a lot (negative: return them), recorded as a lot consumption."""
        lot.remaining -= points
        if not 0 <= lot.reserved <= lot.remaining <= lot.points:
            raise AssertionError(f"lot {lot.id} would leave its bounds")
        lot.dirty = True
        self._touch(lot)
        seq = self._seq.get(entry["id"], 0) + 1
        self._seq[entry["id"]] = seq
        self.consumptions.append({"id": new_id("lc"), "entry_id": entry["id"], "lot_id": lot.id,
                                  "seq": seq, "points": points})

    def reserve(self, lot: LotState, points: int) -> None:
        lot.reserved += points
        if not 0 <= lot.reserved <= lot.remaining:
            raise AssertionError(f"lot {lot.id} reservation out of bounds")
        lot.dirty = True
        self._touch(lot)

    def _touch(self, lot: LotState) -> None:
        for watcher in self.lot_watchers.get(lot.id, ()):
            watcher.pending.append(lot)

    def resolve_hold(self, resolution: dict) -> None:
        """Record a hold's resolution (written by ``flush``): {id, status, captured_points, resolved_entry_id}."""
        self.hold_resolutions.append(resolution)
        for due in self.hold_watchers.get(resolution["id"], ()):
            due.pending_resolutions.append(resolution)

    def set_expiry(self, lot: LotState, expires_at: datetime) -> None:
        """Give a lot a new expiry (a reversal's grace): the only change of a lot's expiry in a unit."""
        lot.expires_at = expires_at
        lot.dirty = True
        self._touch(lot)  # its place in the order of spends moves

    def line(self, entry: dict, line: Line) -> str:
        line_id = new_id("obl")
        self.lines.append({
            "id": line_id, "entry_id": entry["id"], "cycle_date": self.cycle_date, "payer": line.payer,
            "payee": line.payee, "kind": line.kind, "points": line.points, "amount_micro": line.amount_micro,
            "contract_id": line.contract_id, "lot_id": line.lot_id, "original_line_id": line.original_line_id,
        })
        return line_id

    def flush(self) -> None:
        session = self.tx.session
        if self.entries:
            kinds = [row["kind"] for row in self.entries]
            self.tx.after_commit.append(lambda: count_entries(kinds))
        # SQLite numbers the unit's entries itself; PostgreSQL's default does (the column is not sent)
        xid = {"xid": self._sqlite_xid()} if self.entries and not self.tx.is_postgres else {}
        tables = [  # foreign-key order
            (Entry, [{**row, **xid, "request": stored_json(row["request"]), "result": stored_json(row["result"])}
                     for row in self.entries]),
            (Lot, [{"id": lot.id, "member_id": lot.member_id, "entry_id": lot.entry_id,
                    "funder_partner_id": lot.funder_partner_id, "billing": lot.billing,
                    "contract_id": lot.contract_id, "points": lot.points, "remaining": lot.remaining,
                    "reserved": lot.reserved, "issued_at": lot.issued_at, "expires_at": lot.expires_at}
                   for lot in self.new_lots]),
            (Hold, self.holds), (HoldLot, self.hold_lots), (Transfer, self.transfers),
            (LotConsumption, self.consumptions), (ObligationLine, self.lines), (CampaignAward, self.campaign_awards),
        ]
        changed = [lot for lot in self.lots.values() if lot.dirty and not lot.is_new]
        moved = [m for m in self.members.values() if m.delta_available or m.delta_held]
        endpoints = None  # the active webhook endpoints, when read with the rows
        if self.tx.is_postgres:
            updates = [_lot_update(changed[i:i + CHUNK]) for i in range(0, len(changed), CHUNK)]
            updates += [_member_update(moved[i:i + CHUNK]) for i in range(0, len(moved), CHUNK)]
            if sum(len(rows) for _, rows in tables) + len(changed) + len(moved) <= PIPELINE_ROWS:
                endpoints = self._write_pipelined(tables, updates, with_endpoints=needs_endpoints(self.entries))
            else:
                for model, rows in tables:
                    self._copy(model, rows)
                for sql, params in updates:
                    session.connection().exec_driver_sql(sql, params)
        else:
            for model, rows in tables:
                self._insert_sqlite(model, rows)
            if changed:
                self._update_lots(changed)
            if moved:
                self._update_members(moved)
            self._add_to_kept_totals()
        for start in range(0, len(self.hold_resolutions), CHUNK):
            self._resolve_holds(self.hold_resolutions[start:start + CHUNK])
        # Webhook events (points.earned, .redeemed, .reversed, .expired) commit with the entries or not at all.
        record_ledger_entries(self.tx, self.entries, endpoints)

    def _add_to_kept_totals(self) -> None:
        """SQLite: add the unit's campaign awards to their campaigns' kept totals, and its prepaid
        funding to its payers' kept float drawn (rows that exist; on PostgreSQL triggers of migrations
        0020 and 0022 do this for every writer)."""
        awards: dict[str, int] = {}
        for award in self.campaign_awards:
            awards[award["campaign"]] = awards.get(award["campaign"], 0) + award["points"]
        funding: dict[str, int] = {}
        for line in self.lines:
            if line["kind"] == "prepaid_funding":
                funding[line["payer"]] = funding.get(line["payer"], 0) + line["amount_micro"]
        if awards:
            self.tx.session.execute(_ADD_TO_CAMPAIGN_TOTAL, [{"k": k, "p": p} for k, p in sorted(awards.items())])
        if funding:
            self.tx.session.execute(_ADD_TO_FLOAT_DRAWN, [{"k": k, "a": a} for k, a in sorted(funding.items())])

    def _sqlite_xid(self) -> int:
        """SQLite: the ``xid`` of the unit's entries, one more than the highest rowid of entries. Writers
        take turns at the one write lock, held from a unit's first write to its commit, and a new row's
        rowid is one more than the highest: a unit that commits later reads a higher one, so no entry
        commits behind one already listed (docs/ledger.md, "Listing order")."""
        return int(self.tx.session.execute(text("SELECT COALESCE(MAX(rowid), 0) + 1 FROM entries")).scalar_one())

    def _driver(self):
        return self.tx.session.connection().connection.driver_connection

    def _write_pipelined(self, tables: list[tuple[Any, list[dict]]], updates: list[tuple[str, dict]], *,
                         with_endpoints: bool = False) -> dict[str, str] | None:
        """A small unit (a single request): every INSERT and UPDATE sent at once in psycopg's pipeline
        mode — one round trip, where a COPY per table costs two each. Errors surface at the sync.
        ``with_endpoints``: the webhook outbox's read of the active endpoints goes in the same round
        trip, after the writes (where it ran before); returns its answer (partner -> endpoint id)."""
        connection = self._driver()
        with connection.cursor() as cursor, connection.cursor() as listening:
            with connection.pipeline():
                for model, rows in tables:
                    if rows:
                        columns = _sent(model)
                        cursor.executemany(
                            f"INSERT INTO {model.__tablename__} ({', '.join(columns)}) "
                            f"VALUES ({', '.join(['%s'] * len(columns))})",
                            [[_plain(row.get(name)) for name in columns] for row in rows])
                for sql, params in updates:
                    cursor.execute(sql, params)
                if with_endpoints:
                    listening.execute(ACTIVE_ENDPOINTS_SQL)
            return dict(listening.fetchall()) if with_endpoints else None

    def _insert_sqlite(self, model, rows: list[dict]) -> None:
        """SQLite: the driver's executemany over tuples. Each value goes through its column type's own
        bind processor and a missing one takes the column's default, as SQLAlchemy's insert would send
        them, without SQLAlchemy's per-row parameter handling (a fifth of a batch's time)."""
        if not rows:
            return
        sql, plan = _sqlite_insert(model, self.tx.session.get_bind().dialect)
        self._executemany(sql, sqlite_rows(plan, rows))

    def _update_lots(self, changed: list[LotState]) -> None:
        """SQLite: the driver's executemany over tuples, the expiry through its column type's bind
        processor (SQLAlchemy's per-row parameter handling cost as much as the updates themselves)."""
        expires = _bind_processor(Lot.__table__.c.expires_at, self.tx.session.get_bind().dialect) or (lambda v: v)
        self._executemany("UPDATE lots SET remaining = ?, reserved = ?, expires_at = ? WHERE id = ?",
                          [(lot.remaining, lot.reserved, expires(lot.expires_at), lot.id) for lot in changed])

    def _update_members(self, moved: list[MemberState]) -> None:
        """SQLite: as the lots' updates (the columns are integers and the id text: nothing to process)."""
        self._executemany("UPDATE members SET available = available + ?, held = held + ? WHERE id = ?",
                          [(m.delta_available, m.delta_held, m.id) for m in moved])

    def _resolve_holds(self, part: list[dict]) -> None:
        """Mark the unit's resolved holds, each only if still open (one statement per chunk on PostgreSQL,
        the driver's prepared statement per hold on SQLite, without SQLAlchemy building one per hold): a
        hold resolved by another unit meanwhile is a bug (holds resolve under their member's lock)."""
        rows, listed = [], set()
        for r in part:
            if r["id"] in listed:  # one statement would resolve it once, silently
                raise AssertionError(f"hold {r['id']} resolved twice")
            listed.add(r["id"])
            rows.append((r["status"], r["captured_points"], r["resolved_entry_id"], r["id"]))
        if self.tx.is_postgres:
            sql, params = _hold_update(rows, self.tx.now)
            done = {row[0] for row in self.tx.session.connection().exec_driver_sql(sql, params)}
        else:
            dialect = self.tx.session.get_bind().dialect
            resolved_at = _bind_processor(Hold.__table__.c.resolved_at, dialect) or (lambda v: v)
            cursor, done = self.tx.session.connection().connection.driver_connection.cursor(), set()
            try:
                for row in rows:  # the driver's own statement per hold: its row count names a hold not open
                    cursor.execute("UPDATE holds SET status = ?, captured_points = ?, resolved_entry_id = ?, "
                                   "resolved_at = ? WHERE id = ? AND status = 'open'",
                                   (*row[:3], resolved_at(self.tx.now), row[3]))
                    if cursor.rowcount == 1:
                        done.add(row[3])
            finally:
                cursor.close()
        missed = [row[3] for row in rows if row[3] not in done]
        if missed:
            raise AssertionError(f"hold {missed[0]} resolved twice" + (f" (and {len(missed) - 1} more)"
                                                                       if len(missed) > 1 else ""))

    def _executemany(self, sql: str, rows: list[tuple]) -> None:
        cursor = self.tx.session.connection().connection.driver_connection.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()

    def _copy(self, model, rows: list[dict]) -> None:
        """COPY: one set-based statement per table, constraints still checked."""
        if not rows:
            return
        columns = _sent(model)
        with self._driver().cursor().copy(f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([_plain(row.get(name)) for name in columns])


def _sent(model) -> list[str]:
    """PostgreSQL: the columns a table's rows are written with, all but those the server fills
    (``entries.xid``, the writing transaction's id, by its default)."""
    return [column.name for column in model.__table__.columns if column.server_default is None]


@dataclass(frozen=True)
class SqlitePlan:
    """How a table's rows become the driver's tuples: every column's default (None without one), in
    column order; and per column with a bind processor: its place, the processor, and whether it holds
    instants or dates (equal values always give equal text)."""

    defaults: dict[str, Any]
    processed: list[tuple[int, Callable[[Any], Any], bool]]
    values: Callable[[dict], tuple] = field(init=False)  # the columns' values of a row, in order

    def __post_init__(self):
        names = list(self.defaults)
        # itemgetter of one name gives the value itself, not a 1-tuple
        getter = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
        object.__setattr__(self, "values", getter)


def sqlite_rows(plan: SqlitePlan, rows: list[dict]) -> list[tuple]:
    """The rows as the driver's tuples: every column in order, a missing one at its default (a key that
    is not a column is ignored), each value through its column's bind processor."""
    defaults, values = plan.defaults, plan.values
    processed = [(index, _remembering(process) if moment else process) for index, process, moment in plan.processed]

    def as_tuple(row: dict) -> tuple:
        ordered = list(values({**defaults, **row}))
        for index, process in processed:
            ordered[index] = process(ordered[index])
        return tuple(ordered)
    return [as_tuple(row) for row in rows]


_SQLITE_INSERTS: dict[type, tuple[str, SqlitePlan]] = {}


def _remembering(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` with each value's result kept for one table's rows: the instants and dates of a batch
    repeat (its posting time, the lots' expiry), and formatting each one alone was a tenth of a batch."""
    seen: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        if value is None:
            return process(value)
        try:
            return seen[value]
        except KeyError:
            seen[value] = result = process(value)
            return result
    return remembered


def _python_type(type_) -> type:
    try:  # a TypeDecorator (UTCDateTime) says ``object``: its implementation knows
        return getattr(type_, "impl_instance", type_).python_type
    except NotImplementedError:
        return object


def _sqlite_insert(model, dialect) -> tuple[str, SqlitePlan]:
    """A table's INSERT in the driver's own style, and the plan of its rows."""
    if model not in _SQLITE_INSERTS:
        defaults, processed = {}, []
        for index, column in enumerate(model.__table__.columns):
            if column.default is not None and not column.default.is_scalar:
                raise TypeError(f"{model.__tablename__}.{column.name}: only scalar defaults are written here")
            defaults[column.name] = None if column.default is None else column.default.arg
            process = _bind_processor(column, dialect)
            if process is not None:
                processed.append((index, process, _python_type(column.type) in (datetime, date)))
        _SQLITE_INSERTS[model] = (f"INSERT INTO {model.__tablename__} ({', '.join(defaults)}) VALUES "
                                  f"({', '.join('?' * len(defaults))})", SqlitePlan(defaults, processed))
    return _SQLITE_INSERTS[model]


def _bind_processor(column, dialect) -> Callable[[Any], Any] | None:
    """The column type's bind processor for the dialect, as SQLAlchemy would apply it (None: none)."""
    return column.type.dialect_impl(dialect).bind_processor(dialect)


# PostgreSQL updates: one set-based statement over arrays (passed as array literals: psycopg's
# element-by-element list adaptation is slower), in the driver's own parameter style.
def _lot_update(part: list[LotState]) -> tuple[str, dict]:
    ids = pg_array(lot.id for lot in part)
    return ("UPDATE lots SET remaining = u.remaining, reserved = u.reserved, expires_at = u.expires_at "
            "FROM unnest(%(ids)s::text[], %(remaining)s::bigint[], %(reserved)s::bigint[], "
            "%(expires)s::timestamp[]) AS u(id, remaining, reserved, expires_at) WHERE lots.id = u.id "
            # the ids again as = ANY: the planner probes the primary key instead of hashing all lots
            "AND lots.id = ANY(%(ids)s::varchar[])",
            {"ids": ids, "remaining": pg_array(lot.remaining for lot in part),
             "reserved": pg_array(lot.reserved for lot in part),
             "expires": pg_array(lot.expires_at.astimezone(timezone.utc).replace(tzinfo=None) for lot in part)})


def _hold_update(rows: list[tuple], now: datetime) -> tuple[str, dict]:
    """Resolve holds still open, set-based; returns the ids it resolved (``RETURNING``)."""
    return ("UPDATE holds SET status = u.status, captured_points = u.captured, resolved_entry_id = u.entry, "
            "resolved_at = %(now)s FROM unnest(%(ids)s::text[], %(status)s::text[], %(captured)s::bigint[], "
            "%(entries)s::text[]) AS u(id, status, captured, entry) WHERE holds.id = u.id "
            "AND holds.id = ANY(%(ids)s::varchar[]) AND holds.status = 'open' RETURNING holds.id",
            {"ids": pg_array(row[3] for row in rows), "status": pg_array(row[0] for row in rows),
             "captured": pg_array(row[1] for row in rows), "entries": pg_array(row[2] for row in rows),
             "now": _plain(now)})


def _member_update(part: list[MemberState]) -> tuple[str, dict]:
    return ("UPDATE members SET available = members.available + u.da, held = members.held + u.dh "
            "FROM unnest(%(ids)s::text[], %(da)s::bigint[], %(dh)s::bigint[]) AS u(id, da, dh) "
            "WHERE members.id = u.id",
            {"ids": pg_array(m.id for m in part), "da": pg_array(m.delta_available for m in part),
             "dh": pg_array(m.delta_held for m in part)})

