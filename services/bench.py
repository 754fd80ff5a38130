"""``pointsnet bench``: benchmarks on a fresh database, printed as a table per scenario and kept as JSON.

Figures are named with their unit (``_per_s``, ``_s``, ``_ms``, ``_mb``) and recorded
with the machine they were measured on.
"""

from __future__ import annotations

import json
import os
import platform
import random
import secrets
import shutil
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.db.database import normalise_url
from shared.db.migrate import upgrade
from shared.ledger.events import Event
from shared.models import Account, Member, MemberLink
from shared.network import Network
from shared.partners.contracts import ContractTerms

SCENARIOS = {
    "batch-post": "in-process set-based batch post of earn (80%) and burn (20%) events",
    "settle": "settle one cycle of seeded obligation lines across many partners (--scale)",
    "expire": "the lot expiry job over --lots due lots (bounded batches): lots/s and peak memory",
    "report": "a month of one partner's report and the network analytics, aggregated in SQL (--scale)",
    "dashboard": "the Ledger and Settlement pages' queries over one settled cycle of --events (median ms)",
    "peers": "our batch post beside a raw PostgreSQL COPY of exactly the rows it wrote (ratio a/c)",
    "verify": "pointsnet verify over a sealed ledger of --scale entries (full: 10 million), and the sealing",
    # over real HTTP to a `pointsnet serve-api` process (services/bench_http.py)
    "batch-ingest": "signed POST /v1/batch of --batch-size events over HTTP, and in-process in the same run",
    "single-earn": "signed single POST /v1/earn from 32 concurrent clients (--events requests): req/s, p50/p99",
    "hot-member": "concurrent earns and burns on one member (--events / 10 operations): ops/s, exact balance",
    "history": "single burns and earns after a long history (spent lots, a capped campaign, a float): median ms",
}
# --scale: small runs in seconds (the test suite's smoke tests), full is the performance issue's sizes;
# "large" is the report scenario's older name for full
SCALES = ("small", "medium", "full", "large")
# sizes by scale; --events / --lots given on the command line win
BATCH_POST_EVENTS = {"small": 2_000, "medium": 20_000, "full": 200_000}
EXPIRE_LOTS = {"small": 2_000, "medium": 100_000, "full": 1_000_000}
SETTLE_SCALES = {"small": (10_000, 8), "medium": (1_000_000, 100), "full": (10_000_000, 1_000)}  # lines, partners
REPORT_SCALES = {"small": 3_000, "medium": 100_000}  # events posted through the ledger
REPORT_SEEDED = {"full": 10_000_000}  # entries of the measured partner, seeded set-based (PostgreSQL)
PEERS_EVENTS = {"small": 2_000, "medium": 20_000, "full": 100_000}
SINGLE_EARN_REQUESTS = {"small": 200, "medium": 2_000, "full": 20_000}
HOT_MEMBER_OPERATIONS = {"small": 200, "medium": 1_000, "full": 10_000}


def scale_of(scale: str) -> str:
    return "full" if scale == "large" else scale


def machine(database_url: str | None = None) -> dict:
    """The machine the figures were taken on, and the database server (its version asked once; None
    where it cannot be reached any more)."""
    memory_mb = None
    try:
        with open("/proc/meminfo") as handle:
            memory_mb = int(handle.readline().split()[1]) // 1024
    except OSError:
        pass
    # the load average (runnable processes, no unit) says whether other work shared the cores
    return {"cores": os.cpu_count(), "memory_mb": memory_mb, "python": platform.python_version(),
            "platform": platform.platform(), "load_average_1m": round(os.getloadavg()[0], 2),
            **database_server(database_url)}


def database_server(database_url: str | None) -> dict:
    if database_url is None:
        import sqlite3

        return {"database": "sqlite", "database_version": sqlite3.sqlite_version}
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(postgres_url(database_url))
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
    except SQLAlchemyError:
        version = None
    finally:
        engine.dispose()
    return {"database": "postgresql", "database_version": version}


def reference_ms() -> float:
    """CPU milliseconds of a fixed piece of pure Python (dicts, tuples, string formatting, as the posting
    engine does), the best of five: how fast this machine's core runs Python right now.

    On a shared virtual machine the same code's throughput moves by 25 % or more within an hour, and
    CPU seconds move with it. Each scenario records this figure before and after it runs
    (``reference_before_ms``, ``reference_after_ms``), so that figures taken at different times can be
    compared: a run whose reference took twice as long ran on a core half as fast."""
    best = float("inf")
    for _ in range(5):
        started = time.thread_time()  # this thread only: a scenario's leftover threads are not counted
        rows = []
        for n in range(20_000):
            row = {"id": f"ent_{n:012x}", "points": n % 97, "kind": "earn" if n % 5 else "burn"}
            rows.append((row["id"], row["points"] * 3, row["kind"]))
        best = min(best, time.thread_time() - started)
    return round(best * 1000, 2)


def database_cpu_s(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving ``url``'s (fresh, bench-only) database,
    read from /proc when the server runs on this machine (0 for SQLite, or when it cannot be read).

    Beside the wall time, Python's and the database's CPU seconds say what a run costs when other
    work shares the cores (their sum is about the wall time on an idle machine)."""
    name = make_url(url).database
    if not url.startswith("postgresql") or not name:
        return 0.0
    total = 0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if f" {name} ".encode() not in handle.read() + b" ":
                    continue
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            continue
    return total / ticks


class NotPostgres(ValueError):
    """--database-url names another database than PostgreSQL (the message is one line)."""


def postgres_url(database_url: str) -> str:
    """``database_url`` normalised (psycopg 3), or NotPostgres: the benchmark makes its fresh
    databases with PostgreSQL's CREATE DATABASE (without --database-url it runs on a SQLite file)."""
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(normalise_url(database_url))
    except ArgumentError:
        url = None
    if url is None or url.get_backend_name() != "postgresql":
        raise NotPostgres("--database-url must be a PostgreSQL URL (postgresql://…); without it the "
                          "benchmark runs on a temporary SQLite file")
    return url.render_as_string(hide_password=False)


@contextmanager
def fresh_database(database_url: str | None) -> Iterator[tuple[str, Path]]:
    """A new, empty database: a temporary SQLite file, or a new database on the given PostgreSQL
    server. The temporary directory is made once the database is, so that a server that cannot be
    reached leaves nothing behind; both go afterwards (on SIGTERM too: run_bench turns it into
    SystemExit)."""
    if database_url is None:
        workdir = Path(tempfile.mkdtemp(prefix="pointsnet-bench-"))
        try:
            yield f"sqlite:///{workdir / 'bench.db'}", workdir
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    url = make_url(postgres_url(database_url))
    name = f"pointsnet_bench_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except BaseException:
        admin.dispose()
        raise
    workdir = None
    try:
        workdir = Path(tempfile.mkdtemp(prefix="pointsnet-bench-"))
        yield url.set(database=name).render_as_string(hide_password=False), workdir
    finally:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)


def seed_members(network: Network, partner_ids: list[str], count: int) -> list[str]:
    """Members inserted set-based (no personal data: the benchmark measures the ledger)."""
    now = network.clock.now()
    ids = [f"mem_bench{n:08d}" for n in range(count)]

    def unit(tx):
        tx.session.execute(insert(Member.__table__), [
            {"id": i, "status": "active", "available": 0, "held": 0, "created_at": now} for i in ids])
        tx.session.execute(insert(Account.__table__), [
            {"id": f"member:{i}", "kind": "member"} for i in ids] + [
            {"id": f"member:{i}:held", "kind": "member_held"} for i in ids])
        tx.session.execute(insert(MemberLink.__table__), [
            {"partner_id": p, "member_id": i, "customer_ref": None, "linked_at": now}
            for p in partner_ids for i in ids])
    network.tx(unit)
    return ids


def make_batches(member_ids: list[str], events: int, batch_size: int, rng: random.Random) -> list[list[Event]]:
    """``events`` events in batches of ``batch_size``: 80 % earns from amounts at random members, 20 %
    burns of 1–30 points, each by a member who earned earlier in the workload (a burn by a member
    without points would be refused, and the accepted mix would not be 80/20)."""
    if batch_size < 1 or events < 0:
        raise ValueError(f"batch_size must be 1 or more and events 0 or more, not {batch_size} and {events}")
    batches, n = [], 0
    earners: list[str] = []  # a member once per earn: those who earned more are likelier to burn
    while n < events:
        batch = []
        for _ in range(min(batch_size, events - n)):
            n += 1
            member = rng.choice(member_ids)
            if rng.random() < 0.8 or not earners:
                batch.append(Event("earn", f"E{n}", member, amount=rng.randint(1000, 50000)))
                earners.append(member)
            else:
                batch.append(Event("burn", f"B{n}", rng.choice(earners), points=rng.randint(1, 30)))
        batches.append(batch)
    return batches


def accepted_mix(network: Network) -> dict:
    """The earns and burns in the ledger, counted (the workload aims at 80/20 accepted)."""
    with network.db.engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT kind, COUNT(*) FROM entries WHERE kind IN ('earn', 'burn') "
                                        "GROUP BY kind")).all())
    earns, burns = counts.get("earn", 0), counts.get("burn", 0)
    return {"accepted_earns": earns, "accepted_burns": burns,
            "accepted_burn_share": round(burns / (earns + burns), 3) if earns + burns else None}


def scenario_batch_post(database_url: str | None, *, events: int, batch_size: int, members: int,
                        console: Console) -> dict:
    with fresh_database(database_url) as (url, workdir):
        upgrade(url)
        network = Network(Settings(data_dir=workdir), database_url=url)
        try:
            partners = [network.create_partner(f"Bench{i}")["partner_id"] for i in range(4)]
            member_ids = seed_members(network, partners, members)
            rng = random.Random(42)
            batches = make_batches(member_ids, events, batch_size, rng)
            with network.db.engine.connect() as conn:
                version = conn.execute(text("SELECT sqlite_version()" if network.db.dialect == "sqlite"
                                            else "SHOW server_version")).scalar_one()
            posted = refused = 0
            latencies = []
            with Progress(TextColumn("batch-post"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console) as progress:
                task = progress.add_task("post", total=events)
                cpu, db_cpu = time.process_time(), database_cpu_s(url)
                started = time.perf_counter()
                for index, batch in enumerate(batches):
                    t0 = time.perf_counter()
                    outcomes = network.post(partners[index % len(partners)], batch)
                    latencies.append(time.perf_counter() - t0)
                    refused += sum(not isinstance(o, dict) for o in outcomes)
                    posted += len(batch)
                    progress.update(task, advance=len(batch))
                elapsed = time.perf_counter() - started
                cpu, db_cpu = time.process_time() - cpu, database_cpu_s(url) - db_cpu
            latencies.sort()
            return {
                "scenario": "batch-post", "database": network.db.dialect, "database_version": version,
                "events": posted, "refused": refused, "batch_size": batch_size, "members": members,
                "elapsed_s": round(elapsed, 3), "events_per_s": round(posted / elapsed, 1),
                "python_cpu_s": round(cpu, 3), "database_cpu_s": round(db_cpu, 3),
                "batch_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
                "batch_max_ms": round(latencies[-1] * 1000, 1), **accepted_mix(network),
            }
        finally:
            network.close()


def scenario_settle(database_url: str | None, *, scale: str, console: Console) -> dict:
    """Settle one cycle of seeded obligation lines (services/bench_seed.py) spread over many partners.

    Before the clock starts the entries are sealed into the ledger's tree, as the checkpoint job does
    every minute in a running network (timed apart, ``seal_s``). Fails unless the files add up: every
    line appears in the statement of each partner it names, the net positions equal the exact sums
    of the lines rounded once, and ``verify`` finds nothing."""
    from shared.clock import FixedClock
    from shared.ledger.cycles import cycle_date_for
    from shared.ledger.verify import verify

    from services.bench_seed import seed_cycle

    lines, partner_count = SETTLE_SCALES[scale]
    with fresh_database(database_url) as (url, workdir):
        upgrade(url)
        clock = FixedClock(datetime(2026, 1, 6, 2, tzinfo=timezone.utc))
        network = Network(Settings(data_dir=workdir), database_url=url, clock=clock)
        try:
            partners = [network.create_partner(f"Bench{i}", ContractTerms(
                "prepaid" if i % 2 else "postpaid", "1", "0.1", "0.05", "0.2"))["partner_id"]
                for i in range(partner_count)]
            with Progress(TextColumn("settle: seeding the cycle"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as progress:
                task = progress.add_task("seed", total=None)
                started = time.perf_counter()
                seeded = seed_cycle(network, partners, lines=lines, members=max(100, lines // 100),
                                    on_progress=lambda n: progress.update(task, advance=n))
                seed_s = time.perf_counter() - started
            cycle = cycle_date_for(clock.now(), network.settings)
            started = time.perf_counter()
            network.seal()
            seal_s = time.perf_counter() - started
            clock.advance(days=1)
            rss_before = _rss_mb()
            cpu, db_cpu = time.process_time(), database_cpu_s(url)
            started = time.perf_counter()
            result = network.settle(cycle)
            elapsed = time.perf_counter() - started
            cpu, db_cpu = time.process_time() - cpu, database_cpu_s(url) - db_cpu
            rss_after = _rss_mb()
            _check_settlement(network, Path(result["directory"]), cycle, result["net_positions"])
            report = network.tx(verify, readonly=True)
            if not report.ok:
                raise AssertionError(f"verify found offences after seeding: {report.offences[:5]}")
            return {"scenario": "settle", "database": network.db.dialect, "scale": scale,
                    "partners": partner_count, "obligation_lines": seeded.lines, "entries": seeded.entries,
                    "seed_s": round(seed_s, 3), "seal_s": round(seal_s, 3), "elapsed_s": round(elapsed, 3),
                    "python_cpu_s": round(cpu, 3), "database_cpu_s": round(db_cpu, 3),
                    "lines_per_s": round(seeded.lines / elapsed, 1), "peak_rss_mb": round(rss_after, 1),
                    "rss_growth_mb": round(rss_after - rss_before, 1)}
        finally:
            network.close()


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _check_settlement(network: Network, directory: Path, cycle, positions: dict[str, int]) -> None:
    """The files add up: detail records = lines per named partner; net positions = the rounded exact sums."""
    import csv

    from shared.money import round_micro_to_minor
    from shared.settlement.files import statement_name
    from shared.settlement.netting import net_positions

    def unit(tx):
        sums = tx.session.execute(text(
            "SELECT payer, payee, kind, SUM(amount_micro) FROM obligation_lines WHERE cycle_date = :c "
            "GROUP BY payer, payee, kind"), {"c": cycle}).all()
        per_party = tx.session.execute(text(
            "SELECT party, COUNT(*) FROM (SELECT payer AS party FROM obligation_lines WHERE cycle_date = :c "
            "UNION ALL SELECT payee FROM obligation_lines WHERE cycle_date = :c) t GROUP BY party"),
            {"c": cycle}).all()
        return sums, dict(per_party)
    sums, per_party = network.tx(unit, readonly=True)
    expected = net_positions({(payer, payee, kind): round_micro_to_minor(int(amount))
                              for payer, payee, kind, amount in sums})
    if expected != positions or sum(positions.values()) != 0:
        raise AssertionError("settlement net positions differ from the exact sums of the lines")
    for party, count in per_party.items():
        if party == "network":
            continue
        with open(directory / statement_name(party), newline="") as handle:
            details = sum(1 for row in csv.DictReader(handle) if row["record_type"] in ("D", "A"))
        if details != count:
            raise AssertionError(f"statement of {party} has {details} detail records, the ledger {count} lines")


def _seed_lots(network: Network, partner: str, member_ids: list[str], lots: int, console: Console) -> None:
    """Due lots written through the journal (the posting path's own set-based flush): one earn entry
    per member and chunk, several lots each, so the ledger stays verifiable."""
    from shared.db.types import new_id
    from shared.ledger.cycles import enter_open_cycle
    from shared.ledger.journal import Journal
    from shared.ledger.rules import LotState
    from shared.ledger.state import lock_members
    from shared.partners.contracts import terms_in_force

    per_member = max(1, lots // len(member_ids))
    chunk = max(1, 20_000 // per_member)
    with Progress(TextColumn("expire: seeding lots"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("seed", total=per_member * len(member_ids))
        for start in range(0, len(member_ids), chunk):
            ids = member_ids[start:start + chunk]

            def unit(tx):
                journal = Journal(tx, enter_open_cycle(tx))
                journal.members = lock_members(tx, ids)
                terms = terms_in_force(tx, partner, journal.cycle_date)
                for member_id in ids:
                    entry = journal.entry("earn", per_member * 10, partner_id=partner, member_id=member_id,
                                          reference=f"seed-{member_id}", occurred_at=tx.now)
                    for _ in range(per_member):
                        journal.new_lot(LotState(new_id("lot"), member_id, entry["id"], partner, "postpaid",
                                                 terms.contract_id, 10, 10, 0, tx.now,
                                                 tx.settings.lot_expiry(tx.now)))
                    journal.transfer(entry, f"partner:{partner}:issued", f"member:{member_id}", per_member * 10)
                    journal.members[member_id].change(available=per_member * 10)
                journal.flush()
            network.tx(unit)
            progress.update(task, advance=per_member * len(ids))


def scenario_expire(database_url: str | None, *, lots: int, members: int, console: Console) -> dict:
    import resource

    from shared.clock import FixedClock

    with fresh_database(database_url) as (url, workdir):
        upgrade(url)
        clock = FixedClock(datetime(2026, 1, 6, 2, tzinfo=timezone.utc))
        network = Network(Settings(data_dir=workdir, expiry_policy="days:30"), database_url=url, clock=clock)
        try:
            partner = network.create_partner("BenchExpire", ContractTerms("postpaid", "1", "0", "0", "0"))["partner_id"]
            member_ids = seed_members(network, [partner], min(members, lots))
            _seed_lots(network, partner, member_ids, lots, console)
            seeded = network.tx(lambda tx: tx.session.execute(text("SELECT COUNT(*) FROM lots")).scalar_one())
            clock.advance(days=31)
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            cpu, db_cpu = time.process_time(), database_cpu_s(url)
            started = time.perf_counter()
            with Progress(TextColumn("expire: lot expiry job"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as progress:
                task = progress.add_task("expire", total=seeded * 10)
                expired = network.expire_lots(on_batch=lambda points: progress.update(task, advance=points))
            elapsed = time.perf_counter() - started
            cpu, db_cpu = time.process_time() - cpu, database_cpu_s(url) - db_cpu
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            left = network.tx(lambda tx: tx.session.execute(
                text("SELECT COUNT(*) FROM lots WHERE remaining > 0")).scalar_one())
            if left or expired != seeded * 10:
                raise AssertionError(f"expiry left {left} lots open, expired {expired} of {seeded * 10} points")
            return {"scenario": "expire", "database": network.db.dialect, "lots": seeded,
                    "elapsed_s": round(elapsed, 3), "python_cpu_s": round(cpu, 3),
                    "database_cpu_s": round(db_cpu, 3), "lots_per_s": round(seeded / elapsed, 1),
                    "peak_rss_mb": round(rss_after, 1), "rss_growth_mb": round(rss_after - rss_before, 1)}
        finally:
            network.close()


def run_bench(scenarios: list[str], *, database_url: str | None, events: int | None, batch_size: int,
              members: int, json_file: str | None, console: Console, lots: int | None = None,
              scale: str = "small", check_direct: bool = True, api_workers: int = 1,
              errors: Console | None = None) -> list[dict]:
    """Run ``scenarios`` one after the other. A scenario that fails is recorded as ``{"scenario": name,
    "error": "…"}`` (one line, also printed to ``errors``) and the others still run; the tables are
    printed and the record written in any case. SIGTERM ends the run as Ctrl-C does: each fresh database
    and temporary directory is removed on the way out."""
    if events is not None and events < 1 or batch_size < 1 or members < 1 or lots is not None and lots < 1:
        raise ValueError("--events, --batch-size, --members and --lots are 1 or more")
    scale = scale_of(scale)
    from shared.runtime import tune_for_throughput

    tune_for_throughput()  # as `pointsnet serve` does: the in-process and HTTP figures compare alike
    results = []
    with _sigterm_exits():
        for name in scenarios:
            before = reference_ms()
            try:
                result = _run_scenario(name, database_url=database_url, events=events, batch_size=batch_size,
                                       members=members, console=console, lots=lots, scale=scale,
                                       check_direct=check_direct, api_workers=api_workers)
            except Exception as error:  # noqa: BLE001 - recorded; the other scenarios' figures are kept
                result = {"scenario": name, "error": _one_line(error)}
            results.append(result)
            result.update(reference_before_ms=before, reference_after_ms=reference_ms())
    print_results(results, console)
    for result in results:
        if "error" in result:
            (errors or console).print(f"error: scenario {result['scenario']} failed: {result['error']}", markup=False,
                                      highlight=False, soft_wrap=True)
    if json_file is not None:
        record = {"measured_at": datetime.now(timezone.utc).isoformat(), "machine": machine(database_url),
                  "results": results}
        try:
            Path(json_file).write_text(json.dumps(record, indent=2))
        except OSError as exc:  # it became a directory, or its folder went, while the benchmark ran
            raise RecordNotWritten(_not_written(json_file, exc)) from None
        console.print(f"wrote {json_file}")
    return results


def _run_scenario(name: str, *, database_url: str | None, events: int | None, batch_size: int, members: int,
                  console: Console, lots: int | None, scale: str, check_direct: bool, api_workers: int) -> dict:
    def sized(table: dict) -> int:  # --events when given, else the scale's size
        return events if events is not None else table[scale]

    if name == "batch-post":
        return scenario_batch_post(database_url, events=sized(BATCH_POST_EVENTS), batch_size=batch_size,
                                   members=members, console=console)
    if name == "settle":
        return scenario_settle(database_url, scale=scale, console=console)
    if name == "expire":
        return scenario_expire(database_url, lots=lots if lots is not None else EXPIRE_LOTS[scale],
                               members=members, console=console)
    if name == "dashboard":
        from services.bench_dashboard import scenario_dashboard

        return scenario_dashboard(database_url, events=sized(BATCH_POST_EVENTS), batch_size=batch_size,
                                  members=members, console=console)
    if name == "report":
        from services.bench_report import scenario_report

        return scenario_report(database_url, scale=scale, batch_size=batch_size, members=members,
                               console=console, check_direct=check_direct)
    if name == "peers":
        from services.bench_peers import scenario_peers

        return scenario_peers(database_url, events=sized(PEERS_EVENTS), batch_size=batch_size, members=members,
                              console=console)
    if name == "verify":
        from services.bench_verify import scenario_verify

        return scenario_verify(database_url, scale=scale, members=members, console=console)
    if name == "history":
        from services.bench_history import HISTORY_SIZES, scenario_history

        return scenario_history(database_url, size=sized(HISTORY_SIZES), console=console)
    if name in ("batch-ingest", "single-earn", "hot-member"):
        from services import bench_http

        if name == "batch-ingest":
            return bench_http.scenario_batch_ingest(database_url, events=sized(BATCH_POST_EVENTS),
                                                    batch_size=batch_size, members=members, console=console,
                                                    api_workers=api_workers)
        if name == "single-earn":
            return bench_http.scenario_single_earn(database_url, requests=sized(SINGLE_EARN_REQUESTS),
                                                   members=members, console=console, api_workers=api_workers)
        operations = max(events // 10, 1) if events is not None else HOT_MEMBER_OPERATIONS[scale]
        return bench_http.scenario_hot_member(database_url, operations=operations, console=console,
                                              api_workers=api_workers)
    raise ValueError(f"unknown scenario {name!r}")


def _one_line(error: Exception) -> str:
    """What went wrong, in one line: a database error as its driver words it, else the exception's type
    and the first line of its message."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(error, SQLAlchemyError):
        cause = getattr(error, "orig", None) or error
        lines = str(cause).strip().splitlines() or [type(cause).__name__]
        return f"database error: {lines[0]}"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, ``kill``) raises SystemExit(143) in the main thread, so that every
    ``finally`` runs: fresh_database drops its database and removes its directory."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# the figures first in each scenario's table, in this order; the others follow as the scenario gave them
PREFERRED = ("database", "events", "lots", "obligation_lines", "elapsed_s", "events_per_s",
             "batch_p50_ms", "lines_per_s", "lots_per_s", "python_cpu_s", "database_cpu_s", "peak_rss_mb",
             "partner_report_s", "network_report_s", "copy_events_per_s", "ratio_a_c", "ratio_a_b", "entries",
             "sealed_per_s", "entries_per_s", "in_process_events_per_s", "http_in_process_ratio", "requests_per_s",
             "operations_per_s", "p50_ms", "p99_ms")


def print_results(results: list[dict], console: Console) -> None:
    """One table per scenario, a row per figure (its name never wrapped), so that any number of
    scenarios and figures reads at 80 columns; then peers (b)'s line and the machine's speed."""
    for result in results:
        table = Table(title=f"pointsnet bench: {result['scenario']}", title_justify="left")
        table.add_column("figure", no_wrap=True)
        table.add_column("value", overflow="fold")
        if "error" in result:
            table.add_row("error", str(result["error"]))
        keys = [k for k in PREFERRED if k in result] + [k for k in result if k not in PREFERRED]
        for key in keys:
            if key in ("scenario", "error", "reference_before_ms", "reference_after_ms") or result[key] in (None, ""):
                continue
            value = result[key]
            table.add_row(key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
        console.print(table)
    for result in results:
        if "accounting" in result:  # peers (b), or why it did not run (services/bench_peers.py)
            figures = (f"; {result['accounting_events_per_s']} events/s, a / b {result['ratio_a_b']}"
                       if "ratio_a_b" in result else "")
            console.print(f"peers (b) python-accounting: {result['accounting']}{figures}", markup=False)
    console.print("machine speed (CPU ms of a fixed piece of Python; lower is faster), before and after each "
                  "scenario: " + ", ".join(f"{r['scenario']} {r['reference_before_ms']} / {r['reference_after_ms']}"
                                           for r in results))


class RecordNotWritten(Exception):
    """The --json record cannot be written (the message says where and why, in one line)."""


def _not_written(json_file: str, exc: OSError) -> str:
    return f"cannot write the benchmark record {json_file!r}: {exc.strerror or exc}"


def check_record_file(json_file: str) -> None:
    """Before any benchmark runs (minutes, at --scale full): that ``json_file`` can be written, or
    RecordNotWritten. The file is opened for appending (nothing it holds changes) and, if this made
    it, removed again."""
    path = Path(json_file)
    try:
        if not json_file or path.is_dir():
            raise IsADirectoryError(21, "a directory, not a file")
        existed = path.exists()
        with open(path, "a"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:  # its folder missing, a name too long, no permission, a directory
        raise RecordNotWritten(_not_written(json_file, exc)) from None
