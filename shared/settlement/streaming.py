"""Write a cycle's settlement files without holding its lines in memory.

The files are byte for byte those of :func:`shared.settlement.files.build` (the reference
implementation, kept as the specification and checked against this one in the tests).

On PostgreSQL :mod:`shared.settlement.single_pass` writes them (the cycle's sums streamed too).
The generic writer here (SQLite, and PostgreSQL when asked, to compare the two):

* totals, sums and net positions come from one ``GROUP BY`` over the cycle's lines;
* each statement's detail records stream straight into its file: on PostgreSQL the
  database formats them and ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` hands over the
  bytes; on SQLite rows stream through a server-side cursor into Python's csv writer.
  Both quote like the reference (Python's csv module); references cannot hold control
  characters, the one place where the two CSV dialects would differ.
* each file's SHA-256 and record count are computed while it is written.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

from sqlalchemy import String, and_, case, cast, func, literal, null, or_, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import aliased

from shared.db.database import Tx
from shared.models import Contract, Entry, ObligationLine
from shared.money import round_micro_to_minor
from shared.reports.sql import exact_sum, exact_total
from shared.settlement.files import (FORMAT_VERSION, HashedFile, NETWORK, STATEMENT_COLUMNS, LineRecord,
                                     bilateral, detail_row, flows_turned, manifest_header, network_always,
                                     network_summary, statement_name, statement_tail)
from shared.settlement import single_pass
from shared.settlement.netting import net_positions, refuse_sum_beyond_64_bits

COPY_BUFFER = 1 << 16


@dataclass(frozen=True)
class WrittenCycle:
    manifest: bytes
    net_positions: dict[str, int]


class _File(HashedFile):
    """A statement or summary file of the generic writer: rows as dicts of the statement columns."""

    def rows(self, rows: list[dict], *, header: bool = False) -> None:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=STATEMENT_COLUMNS, lineterminator="\n")
        if header:
            writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row[key] for key in STATEMENT_COLUMNS})
        self.write(out.getvalue().encode("utf-8"))


def _totals(tx: Tx, cycle: date) -> dict[tuple[str, str, str], tuple[int, int]]:
    """The cycle's (points, exact amount) per (payer, payee, kind); CycleSumTooLarge if an amount does not
    fit 64 bits (checked here, before any file or roll-up is written)."""
    line = ObligationLine
    rows = tx.session.execute(
        select(line.payer, line.payee, line.kind, *exact_sum(tx, line.points), *exact_sum(tx, line.amount_micro))
        .where(line.cycle_date == cycle).group_by(line.payer, line.payee, line.kind)).all()
    totals = {}
    half = len(exact_sum(tx, line.points))
    for payer, payee, kind, *figures in rows:
        points, amount = exact_total(tx, figures[:half]), exact_total(tx, figures[half:])
        refuse_sum_beyond_64_bits(cycle, payer, payee, kind, amount)
        totals[(payer, payee, kind)] = (points, amount)
    return totals


def _detail_select(cycle: date, party: str, *, formatted: bool):
    """The statement's detail records of ``party``, in the reference order (transaction id, line id).

    The original line of a reversal line is looked up per row (a primary-key probe, nothing for the
    lines that reverse nothing) rather than joined: a join made the planner hash every line of the
    ledger once per statement."""
    line, entry = ObligationLine, Entry
    original_line = aliased(ObligationLine)
    receives = line.payee == party
    sign = case((receives, 1), else_=-1)
    original_entry_id = (select(original_line.entry_id).where(original_line.id == line.original_line_id)
                         .scalar_subquery())
    original_cycle = (select(original_line.cycle_date).where(original_line.id == line.original_line_id)
                      .scalar_subquery())
    adjustment = and_(original_cycle.is_not(None), original_cycle != cycle)
    reference = case((entry.partner_id == party, entry.reference), else_=null())
    counterparty = case((receives, line.payer), else_=line.payee)
    order = (line.entry_id, line.id)
    base = (select().select_from(line).join(entry, entry.id == line.entry_id)
            .outerjoin(Contract, Contract.id == line.contract_id)
            .where(line.cycle_date == cycle, or_(line.payer == party, line.payee == party)))
    if not formatted:
        return base.add_columns(
            line.id, line.entry_id, entry.kind, entry.partner_id, entry.reference, line.payer, line.payee,
            line.kind, line.points, line.amount_micro, Contract.version, original_entry_id,
            original_cycle).order_by(*order)
    amount = sign * line.amount_micro
    magnitude = func.abs(amount)
    exact_sql = (case((amount < 0, "-"), else_="") + cast(magnitude // 1_000_000, String) + "."
                 + func.lpad(cast(func.mod(magnitude, 1_000_000), String), 6, "0"))
    iso = "YYYY-MM-DD"
    columns = [
        case((adjustment, "A"), else_="D"), literal(cycle.isoformat()), literal(party), line.entry_id, reference,
        entry.kind, line.kind, counterparty, cast(sign * line.points, String), exact_sql,
        cast(Contract.version, String), original_entry_id, func.to_char(original_cycle, iso),
    ] + [null()] * (len(STATEMENT_COLUMNS) - 13)
    return base.add_columns(*columns).order_by(*(column.collate("C") for column in order))


def _stream_details(tx: Tx, cycle: date, party: str, out: _File) -> int:
    """Write the party's detail records; returns how many (one line each: references hold no newline)."""
    before = out.newlines
    if tx.is_postgres:
        query = _detail_select(cycle, party, formatted=True).compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        cursor = tx.session.connection().connection.driver_connection.cursor()
        with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                out.write(bytes(chunk))
        return out.newlines - before
    result = tx.session.execute(_detail_select(cycle, party, formatted=False),
                                execution_options={"yield_per": 5000})
    for rows in result.partitions():
        out.rows([detail_row(LineRecord(*row), party, cycle) for row in rows])
    return out.newlines - before


def write_cycle(tx: Tx, cycle: date, target: Path, *, currency: str, cutoff: str, payment_date: date,
                ledger_position: dict, format_version: int = FORMAT_VERSION,
                checkpoint: dict | None = None, generic: bool = False,
                meanwhile: Callable[[], None] | None = None) -> WrittenCycle:
    """Write every file of ``cycle`` into the directory ``target``; return the manifest and positions.

    On PostgreSQL the files come from a few streamed queries over the whole cycle
    (:mod:`shared.settlement.single_pass`); elsewhere, or with ``generic``, from one query per statement.
    Raises NettingError (leaving no file) if the positions do not sum to zero. ``meanwhile`` is other
    work of the unit, done while the files are written (on PostgreSQL, beside the statements).
    """
    network = network_always(format_version)  # a version's files, however new this writer
    if tx.is_postgres and not generic:
        positions, described = single_pass.write_files(tx, cycle, target, payment_date, meanwhile, network=network,
                                                       turned=flows_turned(format_version))
    else:
        positions, described = _write_generic(tx, cycle, target, payment_date, network, flows_turned(format_version))
        if meanwhile is not None:
            meanwhile()
    manifest = manifest_header(cycle, currency=currency, cutoff=cutoff, payment_date=payment_date,
                               ledger_position=ledger_position, format_version=format_version,
                               checkpoint=checkpoint) | {
        "net_positions": positions,
        "files": [{"name": name} | described[name] for name in sorted(described)],
    }
    return WrittenCycle((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(), positions)


def _write_generic(tx: Tx, cycle: date, target: Path, payment_date: date,
                   network: bool, turned: bool) -> tuple[dict[str, int], dict[str, dict]]:
    """One query per statement; the cycle's sums (one per payer, payee and kind) are held in memory."""
    if tx.is_postgres:
        # one query per statement, each short but costed high over a big cycle: PostgreSQL's JIT
        # compiled every one of them (measured: 0.25-0.35 s a statement at 10 million lines)
        tx.session.execute(text("SET LOCAL jit = off"))
    totals = _totals(tx, cycle)
    sums = {key: round_micro_to_minor(amount) for key, (_points, amount) in sorted(totals.items())}
    positions = net_positions(sums, network=network)
    by_party: dict[str, list[tuple[str, str, str]]] = {}  # each party's sums, in key order
    for key in sums:
        payer, payee, _kind = key
        by_party.setdefault(payer, []).append(key)
        by_party.setdefault(payee, []).append(key)
    described: dict[str, dict] = {}
    for party, net in positions.items():
        if party == NETWORK:
            continue
        out = _File(target / statement_name(party))
        out.rows([{"record_type": "H", "cycle_date": cycle, "partner_id": party, "payment_date": payment_date}],
                 header=True)
        details = _stream_details(tx, cycle, party, out)
        tail = statement_tail(cycle, party, net, payment_date, details,
                              (key + totals[key] for key in by_party.get(party, [])))
        out.rows(tail)
        described[statement_name(party)] = out.close()
    for name, content in (("network-summary.csv", network_summary(cycle, sums, positions, payment_date,
                                                                          turned=turned)),
                          ("bilateral.csv", bilateral(cycle, [], sums, totals))):
        out = _File(target / name)
        out.write(content)
        described[name] = out.close()
    return positions, described
