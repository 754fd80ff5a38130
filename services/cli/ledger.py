"""Checking and repairing the ledger, and measuring its speed."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table
from rich.markup import escape

from services.cli import app, repair_app, console, err, fail, literal, show, _network, BENCH_SCENARIOS

MAX_BENCH_MEMBERS = 10_000_000  # --members: more would not finish seeding in any useful time


@app.command()
def verify(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help="PostgreSQL: run the checks on this many "
                                       "connections side by side, in one snapshot (default: this machine's cores, "
                                       "at most 8; the database's cores are what count)."),
) -> None:
    """Check every ledger invariant over the whole database; exit 1 naming offenders."""
    from shared.db.snapshot import DEFAULT_WORKERS
    from shared.ledger.verify import CHECKS, TREE_CHECKS, verify as run_verify

    jobs = jobs or DEFAULT_WORKERS

    network = _network(readonly=True)
    # whether a missing key matters is read in the snapshot verified: a checkpoint signed meanwhile is
    # either in both (and needs the key) or in neither
    report = network.tx(lambda tx: run_verify(tx, public_key=_public_key(network, tx), workers=jobs),
                        readonly=True)
    if as_json:
        print(json.dumps({"ok": report.ok, "counts": report.counts,
                          "offences": [o.__dict__ for o in report.offences]}, indent=2))
    else:
        table = Table(title="ledger integrity")
        table.add_column("check")
        table.add_column("result")
        descriptions = {name: description for name, (description, _) in CHECKS.items()} | TREE_CHECKS
        for name, description in descriptions.items():
            bad = [o for o in report.offences if o.check == name]
            table.add_row(description, "[green]ok[/]" if not bad else f"[red]{len(bad)} offending[/]")
        show(table)
        console.print(", ".join(f"{count} {table_name}" for table_name, count in report.counts.items()))
        for offence in report.offences:
            err.print(escape(f"{offence.check}: {offence.subject}: {offence.detail}"), highlight=False)
    if not report.ok:
        raise typer.Exit(1)


def _public_key(network, tx):
    """The network's public key, to check what the network signed. A read-only command makes no key:
    missing, it is an error where the ledger holds a signed checkpoint, and None (nothing to check with
    it) where it holds none yet — as read in ``tx``, the unit that verifies (its first read takes the
    snapshot that verify then checks)."""
    from sqlalchemy import select

    from shared.keys import KeyNotMade
    from shared.models import Checkpoint

    try:
        return network.signing_key.public_key()
    except KeyNotMade:
        if tx.session.execute(select(Checkpoint.id).limit(1)).first() is None:
            return None
        raise


@repair_app.command("totals")
def repair_totals(as_json: bool = typer.Option(False, "--json", help="Print what was changed as JSON.")) -> None:
    """Set each kept total (a capped campaign's awards, an enforced float's drawn amount) that differs
    from the rows it sums to their sum, after the postings adding to it; audited."""
    from shared.ledger.kept_totals import repair_kept_totals

    repaired = repair_kept_totals(_network())
    if as_json:
        print(json.dumps([r.__dict__ for r in repaired], indent=2))
        return
    if not repaired:
        console.print("every kept total equals the sum of its rows; nothing changed")
        return
    table = Table(title="kept totals repaired")
    for column in ("total", "subject", "kept", "summed"):
        table.add_column(column, justify="right" if column in ("kept", "summed") else "left")
    for r in repaired:
        table.add_row(literal(r.total), literal(r.subject), str(r.kept), str(r.summed))
    show(table)


@app.command()
def bench(
    scenarios: Optional[list[str]] = typer.Argument(None, help="Scenarios to run (default: all but peers, which needs "
                                                                "--database-url): " + BENCH_SCENARIOS),
    database_url: Optional[str] = typer.Option(None, help="Run against a fresh database on this PostgreSQL server "
                                                          "(default: a temporary SQLite file)."),
    events: Optional[int] = typer.Option(None, min=1, help="Events to post in batch-post and peers (default: by "
                                                           "--scale)."),
    batch_size: int = typer.Option(1000, min=1, help="Events per batch."),
    members: int = typer.Option(5000, min=1, max=MAX_BENCH_MEMBERS, help="Members in the benchmark network."),
    lots: Optional[int] = typer.Option(None, min=1, help="Due lots in the expire scenario (default: by --scale; "
                                                         "full is 1000000)."),
    json_file: Optional[str] = typer.Option(None, "--json", help="Write a machine-readable record here."),
    api_workers: int = typer.Option(1, min=1, help="API processes of the HTTP scenarios' serve-api (--workers)."),
    scale: str = typer.Option("small", help="small (seconds, the test suite's size), medium, or full (the "
                                            "performance targets' sizes)."),
    check_direct: bool = typer.Option(True, "--check-direct/--no-check-direct",
                                      help="report: also build both reports directly from the ledger, timed and "
                                           "checked equal to the roll-up path (minutes at --scale full)."),
) -> None:
    """Measure the network's speed on a fresh database. A scenario that fails is recorded with its error
    and the others still run; the exit status is then 1."""
    from services.bench import SCALES, SCENARIOS, NotPostgres, RecordNotWritten, check_record_file, postgres_url, \
        run_bench

    if scale not in SCALES:
        fail(f"--scale is one of small, medium, full, not {scale!r}")
    if database_url is not None:
        try:
            postgres_url(database_url)
        except NotPostgres as error:
            fail(str(error), 2)
    # peers compares with PostgreSQL's COPY: part of the default set only on PostgreSQL
    chosen = scenarios or [s for s in SCENARIOS if database_url or s != "peers"]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        fail(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if "peers" in chosen and not database_url:
        fail("the peers scenario runs on PostgreSQL: give --database-url")
    try:
        if json_file is not None:  # where the record goes, before the benchmark runs, not after
            check_record_file(json_file)
        results = run_bench(chosen, database_url=database_url, events=events, batch_size=batch_size,
                            members=members, json_file=json_file, console=console, lots=lots, scale=scale,
                            check_direct=check_direct, api_workers=api_workers, errors=err)
    except RecordNotWritten as error:  # after a run, its tables were printed
        fail(str(error), 2)
    if any("error" in result for result in results or ()):  # each named in one line by run_bench
        raise typer.Exit(1)
