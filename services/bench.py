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
    "settle": "settle one cycle holding the obligation lines of the batch-post events",
    "expire": "the lot expiry job over --lots due lots (bounded batches): lots/s and peak memory",
    "report": "a month of one partner's report and the network analytics, aggregated in SQL (--scale)",
    # over real HTTP to a `pointsnet serve-api` process (services/bench_http.py)
    "batch-ingest": "signed POST /v1/batch of --batch-size events over HTTP, and in-process in the same run",
    "single-earn": "signed single POST /v1/earn from 32 concurrent clients (--events requests): req/s, p50/p99",
    "hot-member": "concurrent earns and burns on one member (--events / 10 operations): ops/s, exact balance",
}
# entries posted over the month of the report scenario, by --scale
REPORT_SCALES = {"small": 3_000, "medium": 100_000, "large": 1_000_000}


def machine() -> dict:
    memory_mb = None
    try:
        with open("/proc/meminfo") as handle:
            memory_mb = int(handle.readline().split()[1]) // 1024
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_mb": memory_mb, "python": platform.python_version(),
            "platform": platform.platform()}


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
                started = time.perf_counter()
                for index, batch in enumerate(batches):
                    t0 = time.perf_counter()
                    outcomes = network.post(partners[index % len(partners)], batch)
                    latencies.append(time.perf_counter() - t0)
                    refused += sum(not isinstance(o, dict) for o in outcomes)
                    posted += len(batch)
                    progress.update(task, advance=len(batch))
                elapsed = time.perf_counter() - started
            latencies.sort()
            return {
                "scenario": "batch-post", "database": network.db.dialect, "database_version": version,
                "events": posted, "refused": refused, "batch_size": batch_size, "members": members,
                "elapsed_s": round(elapsed, 3), "events_per_s": round(posted / elapsed, 1),
                "batch_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
                "batch_max_ms": round(latencies[-1] * 1000, 1),
            }
        finally:
            network.close()


def scenario_settle(database_url: str | None, *, events: int, batch_size: int, members: int,
                    console: Console) -> dict:
    from datetime import timedelta

    from shared.clock import FixedClock
    from shared.ledger.cycles import cycle_date_for

    with fresh_database(database_url) as (url, workdir):
        upgrade(url)
        clock = FixedClock(datetime(2026, 1, 6, 2, tzinfo=timezone.utc))
        network = Network(Settings(data_dir=workdir), database_url=url, clock=clock)
        try:
            partners = [network.create_partner(f"Bench{i}", ContractTerms(
                "prepaid" if i % 2 else "postpaid", "1", "0.1", "0.05", "0.2"))["partner_id"] for i in range(4)]
            member_ids = seed_members(network, partners, members)
            batches = make_batches(member_ids, events, batch_size, random.Random(7))
            with Progress(TextColumn("settle: posting the cycle"), BarColumn(), MofNCompleteColumn(),
                          console=console) as progress:
                task = progress.add_task("post", total=events)
                for index, batch in enumerate(batches):
                    network.post(partners[index % len(partners)], batch)
                    progress.update(task, advance=len(batch))
            cycle = cycle_date_for(clock.now(), network.settings)
            lines = network.tx(lambda tx: tx.session.execute(text(
                "SELECT COUNT(*) FROM obligation_lines WHERE cycle_date = :c"), {"c": cycle}).scalar_one())
            clock.advance(days=1)
            started = time.perf_counter()
            network.settle(cycle)
            elapsed = time.perf_counter() - started
            return {"scenario": "settle", "database": network.db.dialect, "events": events,
                    "obligation_lines": lines, "elapsed_s": round(elapsed, 3),
                    "lines_per_s": round(lines / elapsed, 1), "events_per_s": ""}
        finally:
            network.close()


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
    from datetime import timedelta

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
            started = time.perf_counter()
            with Progress(TextColumn("expire: lot expiry job"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as progress:
                task = progress.add_task("expire", total=seeded * 10)
                expired = network.expire_lots(on_batch=lambda points: progress.update(task, advance=points))
            elapsed = time.perf_counter() - started
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            left = network.tx(lambda tx: tx.session.execute(
                text("SELECT COUNT(*) FROM lots WHERE remaining > 0")).scalar_one())
            if left or expired != seeded * 10:
                raise AssertionError(f"expiry left {left} lots open, expired {expired} of {seeded * 10} points")
            return {"scenario": "expire", "database": network.db.dialect, "lots": seeded,
                    "elapsed_s": round(elapsed, 3), "lots_per_s": round(seeded / elapsed, 1),
                    "peak_rss_mb": round(rss_after, 1), "rss_growth_mb": round(rss_after - rss_before, 1)}
        finally:
            network.close()


def scenario_report(database_url: str | None, *, scale: str, batch_size: int, members: int,
                    console: Console) -> dict:
    """A month of traffic (70 % at the measured partner), every cycle settled, then the reports timed."""
    from datetime import timedelta

    from shared.clock import FixedClock
    from shared.ledger.cycles import cycle_date_for
    from shared.reports.network import network_report
    from shared.reports.partner import partner_report
    from shared.reports.period import Period
    from shared.reports.render import render

    events = REPORT_SCALES[scale]
    days = 30
    with fresh_database(database_url) as (url, workdir):
        upgrade(url)
        clock = FixedClock(datetime(2026, 1, 1, 2, tzinfo=timezone.utc))
        network = Network(Settings(data_dir=workdir), database_url=url, clock=clock)
        try:
            partners = [network.create_partner(f"Bench{i}", ContractTerms(
                "postpaid", "1", "0.1", "0.05"))["partner_id"] for i in range(4)]
            member_ids = seed_members(network, partners, min(members, max(events // 10, 100)))
            rng = random.Random(11)
            per_day = max(events // days, 1)
            cycles = []
            with Progress(TextColumn("report: posting a month"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as progress:
                task = progress.add_task("post", total=per_day * days)
                for day in range(days):
                    cycles.append(cycle_date_for(clock.now(), network.settings))
                    for index, batch in enumerate(make_batches(member_ids, per_day, batch_size, rng)):
                        batch = [Event(e.kind, f"d{day}-{e.reference}", e.member_id, e.points, e.amount)
                                 for e in batch]
                        who = partners[0] if rng.random() < 0.7 else partners[1 + index % 3]
                        network.post(who, batch)
                        progress.update(task, advance=len(batch))
                    clock.advance(days=1)
            for cycle in cycles:
                network.settle(cycle)
            period = Period(cycles[0], cycles[-1])
            entries = network.tx(lambda tx: tx.session.execute(text(
                "SELECT COUNT(*) FROM entries WHERE partner_id = :p"), {"p": partners[0]}).scalar_one())
            started = time.perf_counter()
            report = network.tx(lambda tx: partner_report(tx, partners[0], period), readonly=True)
            partner_s = time.perf_counter() - started
            started = time.perf_counter()
            analytics = network.tx(lambda tx: network_report(tx, period), readonly=True)
            network_s = time.perf_counter() - started
            started = time.perf_counter()
            for fmt in ("json", "csv", "html"):
                render(report, fmt)
                render(analytics, fmt)
            render_s = time.perf_counter() - started
            return {"scenario": "report", "database": network.db.dialect, "scale": scale,
                    "events": per_day * days, "partner_entries": entries, "cycles": days,
                    "elapsed_s": round(partner_s, 3), "partner_report_s": round(partner_s, 3),
                    "network_report_s": round(network_s, 3), "render_s": round(render_s, 3),
                    "events_per_s": round(entries / partner_s, 1) if partner_s else ""}
        finally:
            network.close()


def run_bench(scenarios: list[str], *, database_url: str | None, events: int, batch_size: int, members: int,
              json_file: str | None, console: Console, lots: int = 200_000, scale: str = "small") -> list[dict]:
    from shared.runtime import tune_for_throughput

    tune_for_throughput()  # as `pointsnet serve` does: the in-process and HTTP figures compare alike
    results = []
    for name in scenarios:
        if name == "batch-post":
            results.append(scenario_batch_post(database_url, events=events, batch_size=batch_size,
                                               members=members, console=console))
        elif name == "settle":
            results.append(scenario_settle(database_url, events=events, batch_size=batch_size,
                                           members=members, console=console))
        elif name == "expire":
            results.append(scenario_expire(database_url, lots=lots, members=members, console=console))
        elif name == "report":
            results.append(scenario_report(database_url, scale=scale, batch_size=batch_size, members=members,
                                           console=console))
        elif name in ("batch-ingest", "single-earn", "hot-member"):
            from services import bench_http

            if name == "batch-ingest":
                results.append(bench_http.scenario_batch_ingest(database_url, events=events, batch_size=batch_size,
                                                                members=members, console=console))
            elif name == "single-earn":
                results.append(bench_http.scenario_single_earn(database_url, requests=events, members=members,
                                                               console=console))
            else:
                results.append(bench_http.scenario_hot_member(database_url, operations=max(events // 10, 1),
                                                              console=console))
    table = Table(title="pointsnet bench")
    preferred = ("scenario", "database", "events", "lots", "elapsed_s", "events_per_s", "batch_p50_ms",
                 "lines_per_s", "lots_per_s", "peak_rss_mb", "network_report_s", "in_process_events_per_s",
                 "http_in_process_ratio", "requests_per_s", "operations_per_s", "p50_ms", "p99_ms")
    columns = [c for c in preferred if any(result.get(c) not in (None, "") for result in results)]
    for column in columns:
        table.add_column(column)
    for result in results:
        table.add_row(*(str(result.get(column, "")) for column in columns))
    console.print(table)
    if json_file:
        record = {"measured_at": datetime.now(timezone.utc).isoformat(), "machine": machine(), "results": results}
        Path(json_file).write_text(json.dumps(record, indent=2))
        console.print(f"wrote {json_file}")
    return results
