"""``pointsnet bench``: benchmarks on a fresh database, printed as a table and kept as JSON.

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


def machine() -> dict:
    memory_mb = None
    try:
        with open("/proc/meminfo") as handle:
            memory_mb = int(handle.readline().split()[1]) // 1024
    except OSError:
        pass
    # the load average says whether other work shared the cores while the figures were taken
    return {"cores": os.cpu_count(), "memory_mb": memory_mb, "python": platform.python_version(),
            "platform": platform.platform(), "load_average_1m": round(os.getloadavg()[0], 2)}


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


@contextmanager
def fresh_database(database_url: str | None) -> Iterator[tuple[str, Path]]:
    """A new, empty database: a temporary SQLite file, or a new database on the given server."""
    workdir = Path(tempfile.mkdtemp(prefix="pointsnet-bench-"))
    if database_url is None:
        try:
            yield f"sqlite:///{workdir / 'bench.db'}", workdir
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    url = make_url(normalise_url(database_url))
    name = f"pointsnet_bench_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False), workdir
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
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
    batches, n = [], 0
    while n < events:
        batch = []
        for _ in range(min(batch_size, events - n)):
            n += 1
            member = rng.choice(member_ids)
            if rng.random() < 0.8:
                batch.append(Event("earn", f"E{n}", member, amount=rng.randint(1000, 50000)))
            else:
                batch.append(Event("burn", f"B{n}", member, points=rng.randint(1, 30)))
        batches.append(batch)
    return batches


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
                "batch_max_ms": round(latencies[-1] * 1000, 1),
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
              scale: str = "small", check_direct: bool = True, api_workers: int = 1) -> list[dict]:
    scale = scale_of(scale)
    from shared.runtime import tune_for_throughput

    tune_for_throughput()  # as `pointsnet serve` does: the in-process and HTTP figures compare alike
    results = []
    for name in scenarios:
        before = reference_ms()
        if name == "batch-post":
            results.append(scenario_batch_post(database_url, events=events or BATCH_POST_EVENTS[scale],
                                               batch_size=batch_size, members=members, console=console))
        elif name == "settle":
            results.append(scenario_settle(database_url, scale=scale, console=console))
        elif name == "expire":
            results.append(scenario_expire(database_url, lots=lots or EXPIRE_LOTS[scale], members=members,
                                           console=console))
        elif name == "dashboard":
            from services.bench_dashboard import scenario_dashboard

            results.append(scenario_dashboard(database_url, events=events or BATCH_POST_EVENTS[scale],
                                              batch_size=batch_size, members=members, console=console))
        elif name == "report":
            from services.bench_report import scenario_report

            results.append(scenario_report(database_url, scale=scale, batch_size=batch_size, members=members,
                                           console=console, check_direct=check_direct))
        elif name == "peers":
            from services.bench_peers import scenario_peers

            results.append(scenario_peers(database_url, events=events or PEERS_EVENTS[scale],
                                          batch_size=batch_size, members=members, console=console))
        elif name == "verify":
            from services.bench_verify import scenario_verify

            results.append(scenario_verify(database_url, scale=scale, members=members, console=console))
        elif name == "history":
            from services.bench_history import HISTORY_SIZES, scenario_history

            results.append(scenario_history(database_url, size=events or HISTORY_SIZES[scale], console=console))
        elif name in ("batch-ingest", "single-earn", "hot-member"):
            from services import bench_http

            if name == "batch-ingest":
                results.append(bench_http.scenario_batch_ingest(database_url, events=events or BATCH_POST_EVENTS[scale],
                                                                batch_size=batch_size, members=members, console=console,
                                                                api_workers=api_workers))
            elif name == "single-earn":
                results.append(bench_http.scenario_single_earn(
                    database_url, requests=events or SINGLE_EARN_REQUESTS[scale], members=members, console=console,
                    api_workers=api_workers))
            else:
                operations = max(events // 10, 1) if events else HOT_MEMBER_OPERATIONS[scale]
                results.append(bench_http.scenario_hot_member(database_url, operations=operations, console=console,
                                                              api_workers=api_workers))
        else:
            raise ValueError(f"unknown scenario {name!r}")
        results[-1].update(reference_before_ms=before, reference_after_ms=reference_ms())
    table = Table(title="pointsnet bench")
    preferred = ("scenario", "database", "events", "lots", "obligation_lines", "elapsed_s", "events_per_s",
                 "batch_p50_ms", "lines_per_s", "lots_per_s", "python_cpu_s", "database_cpu_s", "peak_rss_mb",
                 "partner_report_s", "network_report_s", "copy_events_per_s", "ratio_a_c", "ratio_a_b", "entries",
                 "sealed_per_s", "entries_per_s", "in_process_events_per_s",
                 "http_in_process_ratio", "requests_per_s", "operations_per_s", "p50_ms", "p99_ms", "history",
                 "burn_no_history_ms", "burn_spent_history_ms", "burn_open_lots_ms", "earn_capped_campaign_ms",
                 "earn_enforced_float_ms", "earn_no_history_ms", "member_read_open_lots_ms",
                 "member_read_no_history_ms", "transactions_first_page_ms", "transactions_last_page_ms",
                 "hold_timeouts_pass_ms", "reminder_pass_ms", "status_pass_ms")
    columns = [c for c in preferred if any(result.get(c) not in (None, "") for result in results)]
    for column in columns:
        table.add_column(column)
    for result in results:
        table.add_row(*(str(result.get(column, "")) for column in columns))
    console.print(table)
    for result in results:
        if "accounting" in result:  # peers (b), or why it did not run (services/bench_peers.py)
            figures = (f"; {result['accounting_events_per_s']} events/s, a / b {result['ratio_a_b']}"
                       if "ratio_a_b" in result else "")
            console.print(f"peers (b) python-accounting: {result['accounting']}{figures}", markup=False)
    console.print("machine speed (CPU ms of a fixed piece of Python; lower is faster), before and after each "
                  "scenario: " + ", ".join(f"{r['scenario']} {r['reference_before_ms']} / {r['reference_after_ms']}"
                                           for r in results))
    if json_file is not None:
        record = {"measured_at": datetime.now(timezone.utc).isoformat(), "machine": machine(), "results": results}
        try:
            Path(json_file).write_text(json.dumps(record, indent=2))
        except OSError as exc:  # it became a directory, or its folder went, while the benchmark ran
            raise RecordNotWritten(_not_written(json_file, exc)) from None
        console.print(f"wrote {json_file}")
    return results


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
