"""``pointsnet bench peers``: our batch post beside the physical limit of a PostgreSQL-backed ledger.

In one run on one fresh PostgreSQL database:

(a) the in-process batch post (the ``batch-post`` scenario's events and batches, one transaction per
    batch, every constraint and index in place);
(c) a raw ``COPY`` of exactly the rows (a) inserted into copies of those tables made with ``CREATE
    TABLE … AS … WITH NO DATA``: no constraints, no indexes, no keys, one transaction. The tables are
    found by counting every table's rows before and after (a): each whose count grew (entries,
    transfers, lots, lot consumptions, obligation lines, member tier history, and the cycle and network
    settings rows its first posting wrote) was empty before (a), and is copied whole. Nothing can write those rows faster through
    PostgreSQL, so a/c says how much of the database's own limit the ledger reaches.

The rows are read back (untimed) with ``COPY … TO STDOUT`` into memory and written from there, so (c)
times the same bytes travelling the same socket into the same server. (c) runs ``COPY_RUNS`` times
(the copies emptied in between, untimed) and its median is the figure. The scenario fails unless
each run of (c) wrote exactly as many rows into each table as (a).

(b), when the optional ``bench`` extra is installed: python-accounting posting the same journal entries
(services/bench_peers_accounting.py); ratio a/b.
"""

from __future__ import annotations

import random
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import text

from services.bench import accepted_mix, fresh_database, make_batches, seed_members
from shared.config import Settings
from shared.db.migrate import upgrade
from shared.network import Network

# the ledger's tables every batch post inserts into; (c) copies every table whose row count (a) grew,
# these and the others (members and lots are also updated: an UPDATE has no COPY)
LEDGER_TABLES = ("entries", "transfers", "lots", "lot_consumptions", "obligation_lines")
# (c) lasts a second or two, so a passing slow moment of a shared machine moved it by a factor of
# nearly three between runs: it is timed this many times and the median taken
COPY_RUNS = 3


class PeersNeedPostgres(RuntimeError):
    pass


def scenario_peers(database_url: str | None, *, events: int, batch_size: int, members: int,
                   console: Console, accounting_entries: int | None = None) -> dict:
    """``accounting_entries``: at most this many of (a)'s entries for (b) (by default
    ``ACCOUNTING_ENTRIES`` of services/bench_peers_accounting.py)."""
    if database_url is None:
        raise PeersNeedPostgres("the peers scenario compares with PostgreSQL's COPY: give --database-url")
    with fresh_database(database_url) as (url, workdir):
        upgrade(url)
        network = Network(Settings(data_dir=workdir), database_url=url)
        try:
            partners = [network.create_partner(f"Bench{i}")["partner_id"] for i in range(4)]
            member_ids = seed_members(network, partners, members)
            batches = make_batches(member_ids, events, batch_size, random.Random(42))
            every_table = _tables(network)
            before = _count(network, every_table)
            refused = 0
            with Progress(TextColumn("peers (a): batch post"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as progress:
                task = progress.add_task("post", total=events)
                started = time.perf_counter()
                for index, batch in enumerate(batches):
                    outcomes = network.post(partners[index % len(partners)], batch)
                    refused += sum(not isinstance(o, dict) for o in outcomes)
                    progress.update(task, advance=len(batch))
                a_s = time.perf_counter() - started
            with network.db.engine.connect() as conn:
                version = conn.execute(text("SHOW server_version")).scalar_one()
            grew = {table: count - before[table] for table, count in _count(network, every_table).items()
                    if count > before[table]}
            if any(before[table] for table in grew):  # (c) copies whole tables: they must hold only (a)'s rows
                raise AssertionError(f"tables with rows before (a) grew: {[t for t in grew if before[t]]}")
            dumps, rows = _dump(network, list(grew))
            if rows != grew:
                raise AssertionError(f"read back {rows}, the batch post wrote {grew}")
            copy_runs = []
            for run in range(COPY_RUNS):
                copy_runs.append(_copy_into_bare_tables(network, dumps, fresh=run == 0))
                copied = _count(network, [f"peer_{table}" for table in rows])
                if list(copied.values()) != list(rows.values()):
                    raise AssertionError(f"COPY wrote {copied}, the batch post {rows}")
            c_s = sorted(copy_runs)[len(copy_runs) // 2]
            a_rate, c_rate = events / a_s, events / c_s
            return {"scenario": "peers", "database": network.db.dialect, "database_version": version,
                    "events": events, "refused": refused, "rows": sum(rows.values()),
                    "rows_by_table": rows, **accepted_mix(network), "elapsed_s": round(a_s, 3), "events_per_s": round(a_rate, 1),
                    "copy_s": round(c_s, 3), "copy_runs_s": [round(run, 3) for run in copy_runs],
                    "copy_events_per_s": round(c_rate, 1),
                    "copy_rows_per_s": round(sum(rows.values()) / c_s, 1), "ratio_a_c": round(a_rate / c_rate, 3),
                    **_accounting_peer(network, database_url, events, a_rate, console, accounting_entries)}
        finally:
            network.close()


def _accounting_peer(network: Network, database_url: str, events: int, a_rate: float, console: Console,
                     limit: int | None) -> dict:
    """(b), when python-accounting is installed: services/bench_peers_accounting.py."""
    from services import bench_peers_accounting as peer

    version = peer.installed_version()
    if version is None:
        return {"accounting": peer.NOT_INSTALLED}
    entries, kinds, total = peer.read_entries(network.db.engine, limit or peer.ACCOUNTING_ENTRIES)
    with fresh_database(database_url) as (url, _):
        figures = peer.run_child(url, entries, kinds, console)
    peer.check(figures, entries, kinds)
    b_s = figures["elapsed_s"]
    # a subset's rate per entry, projected over all of (a)'s entries (as (c)'s events/s counts all of them)
    b_rate = events / (b_s * total / len(entries))
    scope = (f"all {total:,} entries" if len(entries) == total
             else f"the first {len(entries):,} of {total:,} entries (rate projected over all)")
    return {"accounting": f"version {version}, {scope}", "accounting_version": version,
            "accounting_entries": len(entries), "accounting_subset": len(entries) < total,
            "accounting_accounts": figures["accounts"], "accounting_s": round(b_s, 3),
            # untimed: its database and accounts made, and its trial balance read back for the checks
            "accounting_setup_s": round(figures["setup_s"], 3), "accounting_check_s": round(figures["check_s"], 3),
            "accounting_entries_per_s": round(len(entries) / b_s, 1),
            "accounting_events_per_s": round(b_rate, 1), "ratio_a_b": round(a_rate / b_rate, 3)}


def _raw(network: Network):
    return network.db.engine.raw_connection()


def _tables(network: Network) -> list[str]:
    from sqlalchemy import inspect

    with network.db.engine.connect() as conn:
        return sorted(inspect(conn).get_table_names())


def _dump(network: Network, tables: list[str]) -> tuple[dict[str, bytes], dict[str, int]]:
    """Every row of ``tables`` (those (a) inserted into), table by table, as COPY's text format (untimed)."""
    raw = _raw(network)
    try:
        dumps, rows = {}, {}
        with raw.driver_connection.cursor() as cursor:
            for table in tables:
                chunks = []
                with cursor.copy(f"COPY {table} TO STDOUT") as copy:
                    for chunk in copy:
                        chunks.append(bytes(chunk))
                dumps[table] = b"".join(chunks)
                rows[table] = dumps[table].count(b"\n")
        raw.driver_connection.commit()
        return dumps, rows
    finally:
        raw.close()


def _copy_into_bare_tables(network: Network, dumps: dict[str, bytes], *, fresh: bool) -> float:
    """(c): COPY the bytes into constraint-free, index-free copies in one transaction; returns seconds.
    The copies are made on the first run and emptied (untimed) before each later one."""
    raw = _raw(network)
    try:
        conn = raw.driver_connection
        with conn.cursor() as cursor:
            for table in dumps:
                cursor.execute(f"CREATE TABLE peer_{table} AS SELECT * FROM {table} WITH NO DATA" if fresh
                               else f"TRUNCATE peer_{table}")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cursor:
            for table, data in dumps.items():
                with cursor.copy(f"COPY peer_{table} FROM STDIN") as copy:
                    for start in range(0, len(data), 1 << 20):
                        copy.write(data[start:start + (1 << 20)])
        conn.commit()
        return time.perf_counter() - started
    finally:
        raw.close()


def _count(network: Network, tables: list[str]) -> dict[str, int]:
    with network.db.engine.connect() as conn:
        return {table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one() for table in tables}
