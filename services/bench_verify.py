"""The ``verify`` scenario of ``pointsnet bench``: seal a large ledger, then time ``pointsnet verify``.

Posting ten million entries through the ledger would take the benchmark an hour before it
measured anything, so the ledger is seeded set-based (``INSERT … SELECT`` over
``generate_series`` on PostgreSQL; rows built in Python on SQLite, for the small scale) in
the shape the posting path writes: pairs of an earn (a transfer, a lot, an issuance-fee
line) and a burn at another partner that consumes part of that lot (a transfer, a lot
consumption, a redemption and a redemption-fee line), members' balances equal to their
lots. The seeded ledger must pass every invariant check of ``pointsnet verify`` — the
scenario fails otherwise — so it is a valid ledger, not merely a large one.

The entries are then sealed by the sealer the job runner uses (``seal_batch``, the same
bounded transactions), with a signed checkpoint every tenth of the way, and ``verify``
(every invariant, every leaf recomputed from its entry, the stored tree, every
checkpoint's root and signature) is timed on its own.
"""

from __future__ import annotations

import os
import time
from datetime import date, datetime, timedelta, timezone

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import insert, text

from shared.clock import FixedClock
from shared.config import Settings
from shared.db.migrate import upgrade
from shared.models import Cycle, Entry, Lot, LotConsumption, ObligationLine, Transfer
from shared.network import Network
from shared.partners.contracts import ContractTerms

# entries in the ledger, by --scale
VERIFY_SCALES = {"small": 4_000, "medium": 1_000_000, "large": 10_000_000, "full": 10_000_000}
START = datetime(2026, 1, 5, 1, tzinfo=timezone.utc)
PARTNERS = 4
CHUNK_PAIRS = 250_000


def _id(prefix: str, n: int) -> str:
    return f"{prefix}_{n:028d}"


def _shape(pair: int, members: int) -> dict:
    """The seeded pair ``pair``: who, how many points, which partners (PostgreSQL's SQL says the same)."""
    earned = 100 + pair % 901
    return {"member": f"mem_bench{pair % members:08d}", "earn_partner": pair % PARTNERS,
            "burn_partner": (pair + 1) % PARTNERS, "earned": earned, "burned": 1 + pair % 97}


_PG_SEED = """
WITH s AS (
    SELECT p, 100 + p % 901 AS earned, 1 + p % 97 AS burned,
           'mem_bench' || lpad((p % :members)::text, 8, '0') AS member,
           (CAST(:partners AS text[]))[1 + p % 4] AS earner, (CAST(:partners AS text[]))[1 + (p + 1) % 4] AS burner,
           (CAST(:contracts AS text[]))[1 + p % 4] AS earn_contract,
           (CAST(:contracts AS text[]))[1 + (p + 1) % 4] AS burn_contract,
           CAST(:start AS timestamp) + (2 * p) * interval '1 millisecond' AS t
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS p
), entries_in AS (
    INSERT INTO entries (id, kind, partner_id, member_id, reference, points, cycle_date, posted_at, occurred_at,
                         request, result)
    SELECT 'ent_' || lpad((2 * p)::text, 28, '0'), 'earn', earner, member, 'E' || (2 * p), earned, :cycle, t, t,
           '{}', '{}' FROM s
    UNION ALL
    SELECT 'ent_' || lpad((2 * p + 1)::text, 28, '0'), 'burn', burner, member, 'B' || (2 * p + 1), burned, :cycle,
           t + interval '1 millisecond', t + interval '1 millisecond', '{}', '{}' FROM s
    RETURNING 1
), transfers_in AS (
    INSERT INTO transfers (id, entry_id, debit_account, credit_account, points)
    SELECT 'trf_' || lpad((2 * p)::text, 28, '0'), 'ent_' || lpad((2 * p)::text, 28, '0'),
           'partner:' || earner || '\\:issued', 'member:' || member, earned FROM s
    UNION ALL
    SELECT 'trf_' || lpad((2 * p + 1)::text, 28, '0'), 'ent_' || lpad((2 * p + 1)::text, 28, '0'),
           'member:' || member, 'partner:' || burner || '\\:redeemed', burned FROM s
    RETURNING 1
), lots_in AS (
    INSERT INTO lots (id, member_id, entry_id, funder_partner_id, billing, contract_id, points, remaining, reserved,
                      issued_at, expires_at)
    SELECT 'lot_' || lpad((2 * p)::text, 28, '0'), member, 'ent_' || lpad((2 * p)::text, 28, '0'), earner,
           'postpaid', earn_contract, earned, earned - burned, 0, t, t + interval '365 days' FROM s
    RETURNING 1
), consumptions_in AS (
    INSERT INTO lot_consumptions (id, entry_id, lot_id, seq, points)
    SELECT 'lc_' || lpad((2 * p + 1)::text, 28, '0'), 'ent_' || lpad((2 * p + 1)::text, 28, '0'),
           'lot_' || lpad((2 * p)::text, 28, '0'), 1, burned FROM s
    RETURNING 1
)
INSERT INTO obligation_lines (id, entry_id, cycle_date, payer, payee, kind, points, amount_micro, contract_id,
                              lot_id)
SELECT 'obl_' || lpad((3 * p)::text, 28, '0'), 'ent_' || lpad((2 * p)::text, 28, '0'), :cycle, earner, 'network',
       'issuance_fee', earned, earned * 100000, earn_contract, 'lot_' || lpad((2 * p)::text, 28, '0') FROM s
UNION ALL
SELECT 'obl_' || lpad((3 * p + 1)::text, 28, '0'), 'ent_' || lpad((2 * p + 1)::text, 28, '0'), :cycle, earner,
       burner, 'redemption', burned, burned * 1000000, burn_contract, 'lot_' || lpad((2 * p)::text, 28, '0') FROM s
UNION ALL
SELECT 'obl_' || lpad((3 * p + 2)::text, 28, '0'), 'ent_' || lpad((2 * p + 1)::text, 28, '0'), :cycle, burner,
       'network', 'redemption_fee', burned, burned * 50000, burn_contract, 'lot_' || lpad((2 * p)::text, 28, '0')
FROM s
"""


def _python_seed(tx, first: int, last: int, members: int, partners: list[str], contracts: list[str],
                 cycle: date) -> None:
    """The rows ``_PG_SEED`` writes, built in Python (SQLite, small scales)."""
    rows: dict = {Entry: [], Transfer: [], Lot: [], LotConsumption: [], ObligationLine: []}
    for p in range(first, last + 1):
        s = _shape(p, members)
        earner, burner = partners[s["earn_partner"]], partners[s["burn_partner"]]
        earn_contract, burn_contract = contracts[s["earn_partner"]], contracts[s["burn_partner"]]
        t = START + timedelta(milliseconds=2 * p)
        earn, burn, lot = _id("ent", 2 * p), _id("ent", 2 * p + 1), _id("lot", 2 * p)
        rows[Entry] += [
            dict(id=earn, kind="earn", partner_id=earner, member_id=s["member"], reference=f"E{2 * p}",
                 points=s["earned"], cycle_date=cycle, posted_at=t, occurred_at=t, request="{}", result="{}"),
            dict(id=burn, kind="burn", partner_id=burner, member_id=s["member"], reference=f"B{2 * p + 1}",
                 points=s["burned"], cycle_date=cycle, posted_at=t + timedelta(milliseconds=1),
                 occurred_at=t + timedelta(milliseconds=1), request="{}", result="{}")]
        rows[Transfer] += [
            dict(id=_id("trf", 2 * p), entry_id=earn, debit_account=f"partner:{earner}:issued",
                 credit_account=f"member:{s['member']}", points=s["earned"]),
            dict(id=_id("trf", 2 * p + 1), entry_id=burn, debit_account=f"member:{s['member']}",
                 credit_account=f"partner:{burner}:redeemed", points=s["burned"])]
        rows[Lot].append(dict(id=lot, member_id=s["member"], entry_id=earn, funder_partner_id=earner,
                              billing="postpaid", contract_id=earn_contract, points=s["earned"],
                              remaining=s["earned"] - s["burned"], reserved=0, issued_at=t,
                              expires_at=t + timedelta(days=365)))
        rows[LotConsumption].append(dict(id=_id("lc", 2 * p + 1), entry_id=burn, lot_id=lot, seq=1,
                                         points=s["burned"]))
        rows[ObligationLine] += [
            dict(id=_id("obl", 3 * p), entry_id=earn, cycle_date=cycle, payer=earner, payee="network",
                 kind="issuance_fee", points=s["earned"], amount_micro=s["earned"] * 100000,
                 contract_id=earn_contract, lot_id=lot),
            dict(id=_id("obl", 3 * p + 1), entry_id=burn, cycle_date=cycle, payer=earner, payee=burner,
                 kind="redemption", points=s["burned"], amount_micro=s["burned"] * 1000000,
                 contract_id=burn_contract, lot_id=lot),
            dict(id=_id("obl", 3 * p + 2), entry_id=burn, cycle_date=cycle, payer=burner, payee="network",
                 kind="redemption_fee", points=s["burned"], amount_micro=s["burned"] * 50000,
                 contract_id=burn_contract, lot_id=lot)]
    for model, values in rows.items():
        tx.session.execute(insert(model.__table__), values)


def seed_ledger(network: Network, entries: int, members: int, console: Console) -> None:
    """``entries`` (even) entries in pairs, with their postings, lots, consumptions and lines."""
    from services.bench import seed_members

    partners, contracts = [], []
    for i in range(PARTNERS):
        made = network.create_partner(f"BenchVerify{i}", ContractTerms("postpaid", "1", "0.1", "0.05"))
        partners.append(made["partner_id"])
    contracts = network.tx(lambda tx: [tx.session.execute(text(
        "SELECT id FROM contracts WHERE partner_id = :p"), {"p": p}).scalar_one() for p in partners])
    pairs = entries // 2
    members = max(1, min(members, pairs))
    seed_members(network, partners, members)
    cycle = START.date()
    network.tx(lambda tx: tx.session.execute(insert(Cycle.__table__).values(cycle_date=cycle, status="open")))
    postgres = network.db.dialect == "postgresql"
    indexes = _drop_secondary_indexes(network) if postgres else []
    with Progress(TextColumn("verify: seeding the ledger"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("seed", total=2 * pairs)
        for first in range(0, pairs, CHUNK_PAIRS):
            last = min(first + CHUNK_PAIRS, pairs) - 1
            if postgres:
                network.tx(lambda tx: _pg_seed(tx, first, last, members, partners, contracts, cycle))
            else:
                network.tx(lambda tx: _python_seed(tx, first, last, members, partners, contracts, cycle))
            progress.update(task, advance=2 * (last - first + 1))
    if postgres:
        with console.status("verify: indexing the seeded ledger"):
            finish_bulk_load(network, indexes)
    network.tx(lambda tx: tx.session.execute(text(
        "UPDATE members SET available = (SELECT COALESCE(SUM(l.remaining), 0) FROM lots l "
        "WHERE l.member_id = members.id) WHERE id LIKE 'mem_bench%'")))
    if postgres:
        vacuum_analyze(network)


SEEDED_TABLES = ("entries", "transfers", "lots", "lot_consumptions", "obligation_lines")
# The seeder's foreign keys, checked set-based once after the load (their triggers are off during it).
FOREIGN_KEYS = [("transfers", "entry_id", "entries"), ("lots", "entry_id", "entries"),
                ("lots", "member_id", "members"), ("lot_consumptions", "entry_id", "entries"),
                ("lot_consumptions", "lot_id", "lots"), ("obligation_lines", "entry_id", "entries"),
                ("obligation_lines", "lot_id", "lots"), ("entries", "member_id", "members"),
                ("transfers", "debit_account", "accounts"), ("transfers", "credit_account", "accounts")]


def _pg_seed(tx, first, last, members, partners, contracts, cycle) -> None:
    # A bulk load: row-by-row foreign-key triggers off (checked set-based afterwards, _orphans),
    # CHECK constraints, primary keys and unique constraints on as always.
    tx.session.execute(text("SET LOCAL session_replication_role = replica"))
    tx.session.execute(text(_PG_SEED), {
        "first": first, "last": last, "members": members, "partners": partners, "contracts": contracts,
        "start": START.replace(tzinfo=None), "cycle": cycle})


def _drop_secondary_indexes(network: Network) -> list[str]:
    """Drop the seeded tables' plain indexes (not those of primary keys or unique constraints): building
    them once after the load is several times faster than maintaining them row by row."""
    def unit(tx):
        rows = tx.session.execute(text("""
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = current_schema() AND i.tablename = ANY(CAST(:tables AS text[]))
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"""),
            {"tables": list(SEEDED_TABLES)}).all()
        for name, _ in rows:
            tx.session.execute(text(f'DROP INDEX "{name}"'))
        return [definition for _, definition in rows]
    return network.tx(unit)


def _recreate_indexes(network: Network, definitions: list[str]) -> None:
    for definition in definitions:
        network.tx(lambda tx: tx.session.execute(text(definition)))


def finish_bulk_load(network: Network, indexes: list[str]) -> None:
    """After a bulk load with foreign-key triggers off: rebuild the dropped indexes, then check every
    foreign key set-based (an orphan fails the benchmark)."""
    _recreate_indexes(network, indexes)
    orphans = network.tx(_orphans, readonly=True)
    if orphans:
        raise AssertionError(f"seeded rows break foreign keys: {orphans}")


def _orphans(tx) -> dict[str, int]:
    found = {}
    for table, column, parent in FOREIGN_KEYS:
        count = tx.session.execute(text(
            f"SELECT COUNT(*) FROM {table} c WHERE c.{column} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {parent} p WHERE p.id = c.{column})")).scalar_one()
        if count:
            found[f"{table}.{column}"] = count
    return found


def vacuum_analyze(network: Network) -> None:
    """What autovacuum would do for a database that grew over months rather than minutes."""
    with network.db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def _cpu_s(tx) -> float | None:
    """CPU seconds this transaction's PostgreSQL backend has used so far (same machine only): the
    figure that does not depend on what else the machine runs. None where it cannot be read."""
    if not tx.is_postgres:
        return None
    pid = tx.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Wall time, this process's CPU time and the database backends' CPU time of a measured step."""

    def __init__(self):
        self.wall = self.client = self.server = 0.0
        self.server_known = True

    def run(self, network: Network, unit, **kwargs):
        def measured(tx):
            before = _cpu_s(tx)
            result = unit(tx)
            after = _cpu_s(tx)
            if before is None or after is None:
                self.server_known = False
            else:
                self.server += after - before
            return result
        wall, client = time.perf_counter(), time.process_time()
        try:
            return network.tx(measured, **kwargs)
        finally:
            self.wall += time.perf_counter() - wall
            self.client += time.process_time() - client

    def figures(self, name: str) -> dict:
        out = {f"{name}_s": round(self.wall, 3), f"{name}_client_cpu_s": round(self.client, 3)}
        if self.server_known:
            out[f"{name}_db_cpu_s"] = round(self.server, 3)
        return out


def seal_with_checkpoints(network: Network, entries: int, console: Console, meter: CpuMeter,
                          checkpoints: int = 10) -> int:
    """Seal every entry with the job runner's bounded batches, signing a checkpoint every 1/``checkpoints``."""
    from shared.transparency.checkpoints import make_checkpoint
    from shared.transparency.store import BATCH, seal_batch

    key = network.signing_key
    every = max(1, entries // checkpoints)
    limit = min(BATCH, every)  # the job runner's batch; smaller only for small ledgers, to sign several times
    sealed = signed_at = 0
    with Progress(TextColumn("verify: sealing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("seal", total=entries)
        while True:
            done = meter.run(network, lambda tx: seal_batch(tx, limit))
            sealed += done
            progress.update(task, advance=done)
            if sealed - signed_at >= every or done < limit:
                network.tx(lambda tx: make_checkpoint(tx, key, seal=False))
                signed_at = sealed
            if done < limit:
                return sealed


def scenario_verify(database_url: str | None, *, scale: str, members: int, console: Console) -> dict:
    from services.bench import database_cpu_s, fresh_database
    from shared.db.snapshot import DEFAULT_WORKERS
    from shared.ledger.verify import verify

    entries = VERIFY_SCALES[scale]
    with fresh_database(database_url) as (url, workdir):
        upgrade(url)
        network = Network(Settings(data_dir=workdir), database_url=url,
                          clock=FixedClock(START + timedelta(hours=20)))
        try:
            with network.db.engine.connect() as conn:
                version = conn.execute(text("SELECT sqlite_version()" if network.db.dialect == "sqlite"
                                            else "SHOW server_version")).scalar_one()
            started = time.perf_counter()
            seed_ledger(network, entries, members, console)
            seed_s = time.perf_counter() - started
            sealing = CpuMeter()
            sealed = seal_with_checkpoints(network, entries, console, sealing)
            if network.db.dialect == "postgresql":
                vacuum_analyze(network)
            key = network.signing_key.public_key()
            verifying = CpuMeter()
            backends = database_cpu_s(url)  # verify's helper connections too, not only the unit's own
            with console.status("verify: pointsnet verify"):
                report = verifying.run(network, lambda tx: verify(tx, public_key=key, workers=DEFAULT_WORKERS),
                                       readonly=True)
            backends = database_cpu_s(url) - backends
            if not report.ok:
                raise AssertionError(f"the seeded ledger does not verify: {report.offences[:5]}")
            if not report.counts["entries"] == report.counts["ledger_leaves"] == sealed == entries:
                raise AssertionError(f"sealed {sealed} of {entries} entries: {report.counts}")
            return {"scenario": "verify", "database": network.db.dialect, "database_version": version,
                    "scale": scale, "entries": entries, "transfers": report.counts["transfers"],
                    "obligation_lines": report.counts["obligation_lines"],
                    "checkpoints": report.counts["checkpoints"],
                    "seed_s": round(seed_s, 3), **sealing.figures("seal"),
                    "sealed_per_s": round(sealed / sealing.wall, 1), "elapsed_s": round(verifying.wall, 3),
                    **verifying.figures("verify"), "entries_per_s": round(entries / verifying.wall, 1),
                    "verify_workers": DEFAULT_WORKERS,
                    # every backend's CPU, in place of the meter's figure of the unit's own backend
                    **({"verify_db_cpu_s": round(backends, 3)} if network.db.dialect == "postgresql" else {}),
                    "load_average": round(os.getloadavg()[0], 2)}
        finally:
            network.close()
