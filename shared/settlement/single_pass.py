"""PostgreSQL: a cycle's settlement files with the cycle's sums streamed, never held in Python.

The bytes are those of the generic writer in :mod:`shared.settlement.streaming` (and so of the
reference builder; tests/clearing/test_settlement_pg.py compares them):

* the cycle's sums per (payer, payee, kind), each once for its payer and once for its payee, ordered
  by party then key, through a scrollable cursor read twice (the database keeps the result): first
  for the net positions, what each party pays and receives and ``bilateral.csv`` (kept only if the
  positions sum to zero: NettingError otherwise, and no file is left), then for each statement's S
  records, in step with the statements;
* each statement's detail records: one query per partner, formatted by the database into one CSV
  line per record and fetched through a server-side cursor a batch at a time (a Python round trip
  per batch, where ``COPY … TO STDOUT`` made one per record). These queries are most of the work
  and independent of each other: ``settlement_jobs`` connections run them side by side, each in the
  settlement's own snapshot (:func:`shared.db.snapshot.stream_in_snapshot`), starting before the
  sums, and write each file's header and detail records; the unit takes the files in partner order
  and writes their S and trailer records from the sums, as one connection would. Meanwhile the unit
  can do other work of its own (settlement writes the cycle's report roll-ups).

Python holds one batch of rows and a few numbers per party; before, the cycle's sums (one per payer,
payee and kind: 146,000 at 10 million lines and 1,000 partners) were held several times over and
every statement walked all of them.
"""

from __future__ import annotations

import csv
import io
import os
from bisect import bisect_right
from collections import defaultdict
from datetime import date
from operator import itemgetter
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import text

from shared.db.database import Tx
from shared.db.snapshot import stream_in_snapshot
from shared.money import round_micro_to_minor
from shared.settlement.files import (BILATERAL_COLUMNS, NETWORK, STATEMENT_COLUMNS, HashedFile, exact, flow,
                                     statement_name, statement_tail, summary_of)
from shared.settlement.netting import NettingError, refuse_sum_beyond_64_bits

BATCH = 2000  # records per fetch: about 300 kB
# Cursors read to the end: plan for all their rows, not the first tenth. No JIT: a statement's query is
# short but costed high over a big cycle, and compiling it took 0.25-0.35 s at 10 million lines.
SETTINGS = ("cursor_tuple_fraction = 1.0", "jit = off")

# The cycle's sums per (payer, payee, kind), each once for its payer and once for its payee, ordered by
# party then key: a party's rows are its statement's S records in order, and the rows a payer holds as
# payer are bilateral.csv's, in order. Read twice through a scrollable cursor (the database keeps the
# result), never held in Python.
_SUMS = """
WITH g AS (SELECT payer, payee, kind, SUM(points) AS points, SUM(amount_micro) AS amount FROM obligation_lines
           WHERE cycle_date = %(cycle)s GROUP BY payer, payee, kind)
SELECT s.party, g.payer, g.payee, g.kind, g.points, g.amount
FROM g CROSS JOIN LATERAL (VALUES (g.payer), (g.payee)) AS s(party)
ORDER BY s.party COLLATE "C", g.payer COLLATE "C", g.payee COLLATE "C", g.kind COLLATE "C"
"""

# Every party of the cycle's lines, as payer or payee: a walk down the two (cycle, party) indexes, one
# probe per party (milliseconds where the cycle's sums take seconds).
_PARTIES = """
WITH RECURSIVE payers(p) AS (
  (SELECT payer FROM obligation_lines WHERE cycle_date = %(cycle)s ORDER BY payer LIMIT 1)
  UNION ALL
  SELECT (SELECT payer FROM obligation_lines WHERE cycle_date = %(cycle)s AND payer > payers.p ORDER BY payer LIMIT 1)
  FROM payers WHERE payers.p IS NOT NULL
), payees(p) AS (
  (SELECT payee FROM obligation_lines WHERE cycle_date = %(cycle)s ORDER BY payee LIMIT 1)
  UNION ALL
  SELECT (SELECT payee FROM obligation_lines WHERE cycle_date = %(cycle)s AND payee > payees.p ORDER BY payee LIMIT 1)
  FROM payees WHERE payees.p IS NOT NULL
)
SELECT array_agg(p) FROM (SELECT p FROM payers UNION SELECT p FROM payees) AS t WHERE p IS NOT NULL
"""

# One statement's detail records, formatted by the database. CSV quoting is Python's csv module's
# (QUOTE_MINIMAL, "\n" line ends): a field is quoted when it holds a comma, a double quote or a newline;
# only the partner's own reference can. NULL arguments of concat() are empty fields.
_DETAILS = """
SELECT concat(
  CASE WHEN o.cycle_date IS NOT NULL AND o.cycle_date <> %(cycle)s THEN 'A,' ELSE 'D,' END, %(cycle_text)s::text, ',',
  %(party)s::text, ',', l.entry_id, ',',
  CASE WHEN e.partner_id = %(party)s THEN
    CASE WHEN strpos(e.reference, ',') > 0 OR strpos(e.reference, '"') > 0 OR strpos(e.reference, E'\\n') > 0
         THEN '"' || replace(e.reference, '"', '""') || '"' ELSE e.reference END END, ',',
  e.kind, ',', l.kind, ',', CASE WHEN l.payee = %(party)s THEN l.payer ELSE l.payee END, ',',
  CASE WHEN l.payee = %(party)s THEN l.points ELSE -l.points END, ',',
  CASE WHEN (l.payee = %(party)s) = (l.amount_micro < 0) AND l.amount_micro <> 0 THEN '-' END,
  abs(l.amount_micro) / 1000000, '.', lpad((abs(l.amount_micro) %% 1000000)::text, 6, '0'), ',',
  c.version, ',', o.entry_id, ',', to_char(o.cycle_date, 'YYYY-MM-DD'), E',,,,,\\n')
FROM obligation_lines l
-- each line's entry by primary key: without parallel workers (a cursor has none) the planner would
-- rather hash the whole entries table, for every statement (0.3 s each at 571,428 entries)
JOIN LATERAL (SELECT e.kind, e.partner_id, e.reference FROM entries e WHERE e.id = l.entry_id OFFSET 0) e ON true
LEFT JOIN contracts c ON c.id = l.contract_id
-- the original line of a reversal line: a primary-key probe for those lines only (a join hashed the ledger)
LEFT JOIN LATERAL (SELECT o.entry_id, o.cycle_date FROM obligation_lines o
                   WHERE l.original_line_id IS NOT NULL AND o.id = l.original_line_id OFFSET 0) o ON true
WHERE l.cycle_date = %(cycle)s AND (l.payer = %(party)s OR l.payee = %(party)s)
ORDER BY l.entry_id COLLATE "C", l.id COLLATE "C"
"""


class _Out(HashedFile):
    """A file of this writer: rows as lists (the same bytes, hash and count as the generic writer's)."""

    def rows(self, rows: list[list], *, header: tuple[str, ...] | None = None) -> None:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if header:
            writer.writerow(header)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
        self.write(out.getvalue().encode("utf-8"))


def _batches(cursor) -> Iterator[list[tuple]]:
    while rows := cursor.fetchmany(BATCH):
        yield rows


def _columns(row: dict) -> list:
    return [row.get(column) for column in STATEMENT_COLUMNS]


def _netting(sums, cycle: date, target: Path, network: bool,
             turned: bool) -> tuple[dict[str, int], dict[str, int], dict[str, int], dict]:
    """First read of the sums: positions, what each party pays and receives, and bilateral.csv.
    ``network``: the network has a position even without a line (``netting.net_positions``)."""
    positions: dict[str, int] = defaultdict(int)
    if network:
        positions[NETWORK] = 0
    pays: dict[str, int] = defaultdict(int)
    receives: dict[str, int] = defaultdict(int)
    out = _Out(target / "bilateral.csv.partial")
    records = control = 0
    try:
        out.rows([], header=BILATERAL_COLUMNS)
        for rows in _batches(sums):
            lines = []
            for party, payer, payee, kind, points, amount in rows:
                refuse_sum_beyond_64_bits(cycle, payer, payee, kind, int(amount))
                minor = round_micro_to_minor(int(amount))
                if party == payee:
                    positions[payee] += minor
                    flow(receives, pays, payee, minor, turned)
                    continue
                positions[payer] -= minor
                flow(pays, receives, payer, minor, turned)
                records += 1
                control += minor
                lines.append(["D", cycle, payer, payee, kind, int(points), exact(int(amount)), minor, None, None])
            out.rows(lines)
        out.rows([["T", cycle, None, None, None, None, None, None, records + 1, control]])
        described = out.close()
        total = sum(positions.values())
        if total != 0:
            raise NettingError(f"net positions sum to {total}, not zero")
    except BaseException:
        out.handle.close()
        out.path.unlink(missing_ok=True)
        raise
    os.replace(out.path, target / "bilateral.csv")
    return dict(sorted(positions.items())), dict(pays), dict(receives), described


class _Runs:
    """Rows of a stream of batches ordered by their first column, taken one key's run at a time."""

    def __init__(self, batches: Iterator[list[tuple]]):
        self.batches = batches
        self.rows: list[tuple] = []
        self.at = 0

    def head(self) -> str | None:
        while self.at >= len(self.rows):
            batch = next(self.batches, None)
            if batch is None:
                return None
            self.rows, self.at = batch, 0
        return self.rows[self.at][0]

    def take(self, key: str) -> Iterator[tuple]:
        """The rows of ``key``; rows of the network (which has no statement) before it are skipped."""
        while (head := self.head()) is not None and head < key:
            if head != NETWORK:
                raise AssertionError(f"the cycle's sums name {head}, which has no net position")
            self.at = bisect_right(self.rows, head, lo=self.at, key=itemgetter(0))
        while self.head() == key:
            end = bisect_right(self.rows, key, lo=self.at, key=itemgetter(0))
            yield from self.rows[self.at:end]
            self.at = end


def _details(connection, params: dict, out: _Out) -> int:
    """Write one statement's detail records; returns how many."""
    count = 0
    with connection.cursor(name="settlement_statement") as cursor:
        cursor.execute(_DETAILS, params)
        for rows in _batches(cursor):
            out.write("".join([row[0] for row in rows]).encode("utf-8"))
            count += len(rows)
    return count


def _statement(target: Path, params: dict, party: str, payment_date: date):
    """The job writing a statement's header and detail records: the file, set aside (closed, its hash
    kept: holding no file handle, any number may wait), and its detail count."""
    def job(connection) -> tuple[_Out, int]:
        out = _Out(target / statement_name(party))
        try:
            out.rows([_columns({"record_type": "H", "cycle_date": params["cycle"], "partner_id": party,
                                "payment_date": payment_date})], header=STATEMENT_COLUMNS)
            return out, _details(connection.connection.driver_connection, params | {"party": party}, out)
        finally:
            out.set_aside()
    return job


def write_files(tx: Tx, cycle: date, target: Path, payment_date: date,
                meanwhile: Callable[[], None] | None = None, *,
                network: bool = True, turned: bool = True) -> tuple[dict[str, int], dict[str, dict]]:
    """Write every file but the manifest into ``target``; return the net positions and each file's digest.

    ``meanwhile`` runs in the unit while the other connections write the statements' detail records
    (settlement writes the cycle's report roll-ups there). ``network``: the network has a position
    (and a summary row) even without a line, as from format version 3 (``files.network_always``);
    ``turned``: a negative sum counts on the other side of the summary (``files.flows_turned``)."""
    for setting in SETTINGS:
        tx.session.execute(text(f"SET LOCAL {setting}"))
    connection = tx.session.connection().connection.driver_connection
    params = {"cycle": cycle, "cycle_text": cycle.isoformat()}
    described: dict[str, dict] = {}
    # The statements' detail records are most of the work, and need nothing but the parties: they start
    # at once, beside the cycle's sums (the cycle is closed, so every connection sees the same lines)
    parties = sorted(set(connection.execute(_PARTIES, params).fetchone()[0] or ()) - {NETWORK})
    with stream_in_snapshot(tx, [_statement(target, params, party, payment_date) for party in parties],
                            tx.settings.settlement_jobs, settings=SETTINGS, ahead=len(parties)) as statements, \
            connection.cursor(name="settlement_sums", scrollable=True) as sums:
        sums.execute(_SUMS, params)
        positions, pays, receives, described["bilateral.csv"] = _netting(sums, cycle, target, network, turned)
        if [party for party in positions if party != NETWORK] != parties:
            raise AssertionError("the cycle's sums and its lines name different parties")
        if meanwhile is not None:
            meanwhile()
        sums.scroll(0, mode="absolute")
        by_party = _Runs(_batches(sums))
        for party, (out, count) in zip(parties, statements):
            out.resume()
            try:
                tail = statement_tail(cycle, party, positions[party], payment_date, count,
                                      (row[1:] for row in by_party.take(party)))
                out.rows([_columns(row) for row in tail])
                described[statement_name(party)] = out.close()
            except BaseException:
                out.handle.close()
                raise
    tx.session.execute(text("SET LOCAL cursor_tuple_fraction TO DEFAULT"))  # the rest plans as usual
    out = _Out(target / "network-summary.csv")
    out.write(summary_of(cycle, pays, receives, positions, payment_date))
    described["network-summary.csv"] = out.close()
    return positions, described
