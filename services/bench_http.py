"""HTTP scenarios of ``pointsnet bench``: signed requests over real HTTP to a real ``pointsnet serve-api``.

Each scenario starts its own API process (``python -m services.cli serve-api``) on a fresh
database, talks to it with the partner SDK (RFC 9421 signatures, Idempotency-Keys, response
signatures verified) and then checks the ledger: every accepted event is in it exactly once,
nothing refused is, and ``verify`` finds no offence. A scenario whose check fails raises.

* ``batch-ingest``: signed ``POST /v1/batch`` of ``batch_size`` events (80 % earn, 20 % burn,
  many members); in the same run, the in-process batch post of the same events on a second
  fresh database; events/s of both and their ratio.
* ``single-earn``: signed single ``POST /v1/earn`` from ``clients`` concurrent clients, many
  members of a few partners: requests/s, p50 and p99 latency.
* ``hot-member``: concurrent earns and burns on one member: operations/s, and the member's
  balance checked exactly against the answers.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select, text

from shared.config import Settings
from shared.db.migrate import upgrade
from shared.ledger.events import Event
from shared.ledger.verify import verify
from shared.models import Entry, Lot, Member
from shared.network import Network
from shared.partners.keys import add_key
from shared.ports import free_port
from shared.sdk import PointsnetAPIError, PointsnetClient
from shared.signing import public_key_from_jwk, public_key_pem

PARTNERS = 4
# batch-ingest: the one refusal its valid events may meet (a burn beyond the member's balance)
BATCH_REFUSALS_EXPECTED = ("insufficient_points",)
# The API's per-partner rate limit guards a real network; a benchmark measures what is behind it.
BENCH_RATE_LIMIT = "100000000/minute"


@dataclass
class BenchPartner:
    partner_id: str
    key_id: str
    key: Ed25519PrivateKey


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux; 0 where /proc cannot tell)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux /proc; just ``pid`` where it cannot tell)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in children.read_text().split())
            except (OSError, ValueError):
                pass
    return found


@dataclass
class Server:
    base_url: str
    pid: int

    def cpu_s(self) -> float:
        """The API's CPU: the process and, with ``--workers``, its worker processes."""
        return sum(cpu_seconds(pid) for pid in descendants(self.pid))


class CpuMeter:
    """CPU time spent from now on by the API process, this (client) process and the database's
    backends — per operation, a figure a busy shared machine changes far less than throughput."""

    def __init__(self, network: Network, server: Server):
        self.network, self.server = network, server
        self.start = self._now()

    def _backends(self) -> float:
        if self.network.db.dialect != "postgresql":
            return 0.0  # SQLite runs inside the API process
        pids = self.network.tx(lambda tx: tx.session.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )).scalars().all(), readonly=True)
        return sum(cpu_seconds(pid) for pid in pids)

    def _now(self) -> tuple[float, float, float, float]:
        return self.server.cpu_s(), time.process_time(), self._backends(), os.getloadavg()[0]

    def used(self, operations: int) -> dict:
        server, client, database, load = self._now()
        per = 1000 / max(operations, 1)
        return {"server_cpu_per_op_ms": round((server - self.start[0]) * per, 3),
                "client_cpu_per_op_ms": round((client - self.start[1]) * per, 3),
                "database_cpu_per_op_ms": round((database - self.start[2]) * per, 3),
                "load_average": round(max(load, self.start[3]), 2)}


@contextmanager
def bench_network(database_url: str | None) -> Iterator[tuple[str, Path, Network]]:
    """A fresh, migrated database (dropped afterwards) and a network over it (closed afterwards)."""
    from services.bench import fresh_database

    with fresh_database(database_url) as (url, workdir):
        upgrade(url)
        network = Network(Settings(data_dir=workdir), database_url=url)
        try:
            yield url, workdir, network
        finally:
            network.close()


@contextmanager
def api_server(database_url: str, workdir: Path, *, env: dict | None = None, workers: int = 1) -> Iterator[Server]:
    """A ``pointsnet serve-api`` process (``workers`` API processes) on a free local port, over ``database_url``."""
    port = free_port()
    environment = dict(os.environ, POINTSNET_DATA_DIR=str(workdir), POINTSNET_DATABASE_URL=database_url,
                       POINTSNET_RATE_LIMIT=BENCH_RATE_LIMIT, **(env or {}))
    log_path = workdir / "serve-api.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "services.cli", "serve-api", "--port", str(port),
                                   "--workers", str(workers)],
                                  env=environment, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"serve-api exited with {server.returncode}: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve-api did not come up: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Server(base, server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def prepare(network: Network, members: int, *, partners: int = PARTNERS) -> tuple[list[BenchPartner], list[str]]:
    """Partners with one signing key each and ``members`` members linked to all of them; the
    network's own keys are made here, before the API process (which never creates keys) starts."""
    from services.bench import seed_members

    network.keyring, network.signing_key  # noqa: B018 - written into the data directory
    made = []
    for index in range(partners):
        partner_id = network.create_partner(f"Bench{index}")["partner_id"]
        key = Ed25519PrivateKey.generate()
        key_id = network.tx(lambda tx: add_key(tx, partner_id, public_key_pem(key.public_key()).decode()))["key_id"]
        made.append(BenchPartner(partner_id, key_id, key))
    return made, seed_members(network, [p.partner_id for p in made], members)


class Clients:
    """One SDK client per (thread, partner): httpx clients are not shared between threads."""

    def __init__(self, base_url: str, partners: list[BenchPartner]):
        self.base_url = base_url
        self.partners = partners
        keys = httpx.get(f"{base_url}/v1/network/keys", timeout=10).json()["keys"]
        self.network_keys = {key["kid"]: public_key_from_jwk(key) for key in keys}
        self.local = threading.local()
        self.made: list[PointsnetClient] = []
        self.lock = threading.Lock()

    def make_own(self) -> None:
        """Make this thread's clients of every partner now (a till makes its client at start-up)."""
        for index in range(len(self.partners)):
            self.get(index)

    def get(self, index: int) -> PointsnetClient:
        clients = self.local.__dict__.setdefault("clients", {})
        if index not in clients:
            partner = self.partners[index]
            clients[index] = PointsnetClient(self.base_url, partner.key_id, partner.key,
                                             network_keys=self.network_keys, timeout=120)
            with self.lock:
                self.made.append(clients[index])
        return clients[index]

    def close(self) -> None:
        for client in self.made:
            client.close()


def wire(event: Event) -> dict:
    body = {"type": event.kind, "reference": event.reference, "member_id": event.member_id}
    if event.points is not None:
        body["points"] = event.points
    if event.amount is not None:
        body["amount"] = event.amount
    return body


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def check_ledger(network: Network, accepted: dict[str, int], refused: set[str]) -> dict:
    """Every accepted reference (partner-scoped, here unique network-wide) exactly once in the
    ledger and with the points the answer gave; nothing refused; no invariant broken."""
    def read(tx):
        found: dict[str, list[int]] = {}
        for reference, points in tx.session.execute(
                select(Entry.reference, Entry.points).where(Entry.kind.in_(("earn", "burn")))):
            found.setdefault(reference, []).append(points)
        return found, verify(tx)

    found, report = network.tx(read, readonly=True)
    twice = [ref for ref, rows in found.items() if len(rows) > 1]
    missing = [ref for ref in accepted if ref not in found]
    wrong = [ref for ref, points in accepted.items() if ref in found and found[ref] != [points]]
    leaked = [ref for ref in refused if ref in found]
    if twice or missing or wrong or leaked or not report.ok:
        raise AssertionError(f"ledger check failed: {len(twice)} references twice, {len(missing)} accepted missing, "
                             f"{len(wrong)} with other points, {len(leaked)} refused yet posted, "
                             f"offences {report.offences[:5]}")
    return {"entries": len(found)}


def _version(network: Network) -> str:
    with network.db.engine.connect() as conn:
        return conn.execute(text("SELECT sqlite_version()" if network.db.dialect == "sqlite"
                                 else "SHOW server_version")).scalar_one()


def _in_process(database_url: str | None, batches: list[list[Event]], members: int, console: Console) -> float:
    """Seconds the in-process batch post of ``batches`` takes on its own fresh database."""
    from services.bench import seed_members

    with bench_network(database_url) as (url, workdir, network):
        partners = [network.create_partner(f"Bench{i}")["partner_id"] for i in range(PARTNERS)]
        seed_members(network, partners, members)
        with Progress(TextColumn("batch-ingest: in-process"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("post", total=sum(map(len, batches)))
            started = time.perf_counter()
            for index, batch in enumerate(batches):
                network.post(partners[index % PARTNERS], batch)
                progress.update(task, advance=len(batch))
            return time.perf_counter() - started


def scenario_batch_ingest(database_url: str | None, *, events: int, batch_size: int, members: int,
                          console: Console, concurrency: int = 2, api_workers: int = 1) -> dict:
    from services.bench import accepted_mix, make_batches

    member_ids = [f"mem_bench{n:08d}" for n in range(members)]  # as seed_members names them
    batches = make_batches(member_ids, events, batch_size, random.Random(42))
    in_process_s = _in_process(database_url, batches, members, console)
    with bench_network(database_url) as (url, workdir, network):
        partners, _ = prepare(network, members)
        version = _version(network)
        with api_server(url, workdir, workers=api_workers) as server:
            clients = Clients(server.base_url, partners)
            bodies = [{"events": [wire(e) for e in batch]} for batch in batches]
            answers: list[dict] = [{}] * len(batches)

            def send(index: int) -> None:
                answers[index] = clients.get(index % PARTNERS).call("POST", "/v1/batch", bodies[index]).body

            try:
                http_s, latencies, cpu = _hammer(len(batches), concurrency, send, console,
                                                 "batch-ingest: over HTTP (batches)", setup=clients.make_own,
                                                 start=lambda: CpuMeter(network, server))
                cpu_used = cpu.used(events)
            finally:
                clients.close()
        accepted, refused = tally_batch_answers(answers)
        checked = check_ledger(network, accepted, refused)
        mix = accepted_mix(network)
    return {
        "scenario": "batch-ingest", "database": network.db.dialect, "database_version": version,
        "events": events, "accepted": len(accepted), "refused": len(refused), "batch_size": batch_size,
        "members": members, "concurrency": concurrency, "api_workers": api_workers, "ledger_entries": checked["entries"],
        "elapsed_s": round(http_s, 3), "events_per_s": round(events / http_s, 1),
        "accepted_events_per_s": round(len(accepted) / http_s, 1), **mix,
        "batch_p50_ms": round(_percentile(latencies, 0.5) * 1000, 1),
        "batch_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "in_process_s": round(in_process_s, 3), "in_process_events_per_s": round(events / in_process_s, 1),
        "http_in_process_ratio": round(in_process_s / http_s, 3), **cpu_used,
    }


def tally_batch_answers(answers: list[dict]) -> tuple[dict[str, int], set[str]]:
    """The accepted events' points by reference, and the refused references, of ``POST /v1/batch``'s
    answers. The workload's events are all valid, so any refusal but a burn beyond the member's balance
    (``BATCH_REFUSALS_EXPECTED``) is a fault of the run: AssertionError naming the codes."""
    accepted: dict[str, int] = {}
    refused: set[str] = set()
    unexpected: dict[str, int] = {}
    for answer in answers:
        for result in answer["results"]:
            if result["status"] == 200:
                accepted[result["reference"]] = result["result"]["points"]
            else:
                refused.add(result["reference"])
                code = result["problem"]["code"]
                if code not in BATCH_REFUSALS_EXPECTED:
                    unexpected[code] = unexpected.get(code, 0) + 1
    if unexpected:
        raise AssertionError("batch-ingest: events refused for other reasons than insufficient points: "
                             + ", ".join(f"{count} {code}" for code, count in sorted(unexpected.items())))
    return accepted, refused


def _hammer(total: int, clients: int, operation, console: Console, label: str, *,
            setup: Callable[[], None] | None = None, start: Callable[[], Any] | None = None
            ) -> tuple[float, list[float], Any]:
    """``total`` calls of ``operation(n)`` from ``clients`` threads; (seconds, latencies, what ``start``
    returned).

    Each thread first runs ``setup`` — what a till does once at start-up, such as making its SDK
    clients — and ``start`` (a CPU meter, say) and the clock start only once every thread is set up."""
    counter = itertools.count()
    latencies: list[float] = []
    failures: list[BaseException] = []
    began: list = []

    def go() -> None:  # run once, when every thread is set up, before any is released
        began.append(start() if start is not None else None)
        began.append(time.perf_counter())
    gate = threading.Barrier(clients + 1, action=go)
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task(label, total=total)

        def worker():
            mine = []
            try:
                if setup is not None:
                    setup()
                gate.wait()
                while (n := next(counter)) < total:
                    t0 = time.perf_counter()
                    operation(n)
                    mine.append(time.perf_counter() - t0)
                    progress.update(task, advance=1)
            except threading.BrokenBarrierError:
                pass  # another thread's set-up failed: reported below
            except BaseException as exc:  # noqa: BLE001 - reported below, the run is void
                failures.append(exc)
                gate.abort()
            latencies.extend(mine)

        threads = [threading.Thread(target=worker) for _ in range(clients)]
        for thread in threads:
            thread.start()
        try:
            gate.wait()
        except threading.BrokenBarrierError:
            pass
        for thread in threads:
            thread.join()
        ended = time.perf_counter()
    if failures:
        raise failures[0]
    started, clock = began
    return ended - clock, latencies, started


def scenario_single_earn(database_url: str | None, *, requests: int, members: int, console: Console,
                         clients: int = 32, api_workers: int = 1) -> dict:
    """Fails if any earn is refused: each is a valid earn of a member linked to its partner, so a refusal
    is a fault, and counting it as throughput would flatter the figure. The warm-up's requests (before
    the clock starts) are reported apart from the timed ones."""
    warmup = min(requests, clients * 2)
    with bench_network(database_url) as (url, workdir, network):
        partners, member_ids = prepare(network, members)
        version = _version(network)
        accepted: dict[str, int] = {}
        refused: dict[str, str] = {}
        plan = random.Random(5)
        work = [(n % PARTNERS, plan.choice(member_ids), plan.randint(1000, 50000))
                for n in range(warmup + requests)]
        with api_server(url, workdir, workers=api_workers) as server:
            pool = Clients(server.base_url, partners)

            def earn(n: int) -> None:
                partner, member, amount = work[n]
                reference = f"S{n}"
                try:
                    body = pool.get(partner).earn(member, reference, amount=amount)
                    accepted[reference] = body["points"]
                except PointsnetAPIError as error:
                    refused[reference] = error.code

            try:
                _hammer(warmup, clients, earn, console, "single-earn: warm-up")
                elapsed, latencies, cpu = _hammer(requests, clients, lambda n: earn(warmup + n), console,
                                                  "single-earn", setup=pool.make_own,
                                                  start=lambda: CpuMeter(network, server))
                cpu_used = cpu.used(requests)
            finally:
                pool.close()
        if refused:
            codes: dict[str, int] = {}
            for code in refused.values():
                codes[code] = codes.get(code, 0) + 1
            raise AssertionError(f"single-earn: {len(refused)} of {warmup + requests} earns refused: "
                                 + ", ".join(f"{count} {code}" for code, count in sorted(codes.items())))
        checked = check_ledger(network, accepted, set())
    timed = sum(1 for n in range(warmup, warmup + requests) if f"S{n}" in accepted)
    return {
        "scenario": "single-earn", "database": network.db.dialect, "database_version": version,
        "requests": requests, "accepted": timed, "refused": 0, "warmup_requests": warmup,
        "warmup_accepted": len(accepted) - timed, "clients": clients, "api_workers": api_workers,
        "members": members, "ledger_entries": checked["entries"], "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(requests / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.5) * 1000, 1), "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        **cpu_used,
    }


def scenario_hot_member(database_url: str | None, *, operations: int, console: Console, clients: int = 16,
                        api_workers: int = 1) -> dict:
    """Earns and burns of 1 to 20 points, half and half, on one member from ``clients`` concurrent
    clients of all partners; burns beyond the balance are refused (``insufficient_points``)."""
    with bench_network(database_url) as (url, workdir, network):
        partners, [member] = prepare(network, 1)
        opening = 500
        network.earn(partners[0].partner_id, member, "H-opening", points=opening)
        version = _version(network)
        plan = random.Random(9)
        work = [(n % PARTNERS, "earn" if plan.random() < 0.5 else "burn", plan.randint(1, 20))
                for n in range(operations)]
        earned, burned = [], []
        accepted: dict[str, int] = {"H-opening": opening}
        refused: set[str] = set()
        with api_server(url, workdir, workers=api_workers) as server:
            pool = Clients(server.base_url, partners)

            def operate(n: int) -> None:
                partner, kind, points = work[n]
                reference = f"H{n}"
                client = pool.get(partner)
                try:
                    if kind == "earn":
                        client.earn(member, reference, points=points)
                        earned.append(points)
                    else:
                        client.burn(member, reference, points)
                        burned.append(points)
                    accepted[reference] = points
                except PointsnetAPIError as error:
                    if error.code != "insufficient_points":
                        raise
                    refused.add(reference)

            try:
                elapsed, latencies, cpu = _hammer(operations, clients, operate, console, "hot-member",
                                                  setup=pool.make_own, start=lambda: CpuMeter(network, server))
                cpu_used = cpu.used(operations)
            finally:
                pool.close()
        expected = opening + sum(earned) - sum(burned)
        balance, lots_left = network.tx(lambda tx: (
            tx.session.execute(select(Member.available, Member.held).where(Member.id == member)).one(),
            tx.session.execute(select(func.coalesce(func.sum(Lot.remaining), 0))
                               .where(Lot.member_id == member)).scalar_one()), readonly=True)
        if tuple(balance) != (expected, 0) or int(lots_left) != expected:
            raise AssertionError(f"hot member's balance {tuple(balance)} (lots {lots_left}) is not the "
                                 f"{expected} the answers add up to")
        check_ledger(network, accepted, refused)
    return {
        "scenario": "hot-member", "database": network.db.dialect, "database_version": version,
        "operations": operations, "earns": len(earned), "burns": len(burned), "refused": len(refused),
        "clients": clients, "api_workers": api_workers, "balance": expected, "balance_exact": True,
        "elapsed_s": round(elapsed, 3),
        "operations_per_s": round(operations / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.5) * 1000, 1), "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        **cpu_used,
    }
