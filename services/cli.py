"""The ``pointsnet`` command: runs any service, or all of them in one process."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.exc import SQLAlchemyError

from shared.config import KeyConfigurationError, get_settings
from shared.errors import PointsnetError
from shared.money import MoneyError
from shared.runtime import tune_for_throughput

app = typer.Typer(help="Pointsnet: a coalition loyalty points network.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
partners_app = typer.Typer(help="Partner merchants and their contracts.", no_args_is_help=True)
clearing_app = typer.Typer(help="Settlement of cycles and finance controls.", no_args_is_help=True)
rules_app = typer.Typer(help="Earn rules and campaigns (JSON or YAML documents, versioned).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(db_app, name="db")
app.add_typer(clearing_app, name="clearing")
keys_app = typer.Typer(help="A partner's signing keys.", no_args_is_help=True)
partners_app.add_typer(keys_app, name="keys")
app.add_typer(partners_app, name="partners")
alerts_app = typer.Typer(help="Operator alerts: limits reached, refusals that protect money.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
webhooks_app = typer.Typer(help="Signed webhooks to partners: endpoints, secrets, deliveries, dead letters.",
                           no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
members_app = typer.Typer(help="Members: balance, tier, activity status, history; merge and erasure.", no_args_is_help=True)
app.add_typer(members_app, name="members")
reports_app = typer.Typer(help="Partner performance reports and network analytics (docs/reports.md).",
                          no_args_is_help=True)
app.add_typer(reports_app, name="reports")
users_app = typer.Typer(help="Dashboard users: operators, finance, partner viewers (docs/dashboard.md).",
                        no_args_is_help=True)
app.add_typer(users_app, name="users")
repair_app = typer.Typer(help="Repairs that verify may call for (docs/operations.md).", no_args_is_help=True)
app.add_typer(repair_app, name="repair")
console = Console()
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _logging() -> None:
    from shared.observability import configure_logging

    configure_logging(get_settings().log_format)


def _network(database_url: str | None = None, **kwargs):
    from shared.db.migrate import is_current, upgrade
    from shared.network import Network

    settings = get_settings()
    url = database_url or settings.resolved_database_url
    if not is_current(url):
        if url.startswith("sqlite"):
            upgrade(url)  # the embedded default keeps itself current
        else:
            fail("the database schema is not current; run `pointsnet db upgrade` first")
    return Network(settings, database_url=database_url, **kwargs)


def _upgrade(url: str) -> None:
    from shared.db.migrate import upgrade

    upgrade(url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to the configured database."""
    url = get_settings().resolved_database_url
    _upgrade(url)
    console.print("database schema is up to date")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the configured database."""
    from shared.db.migrate import current_revision

    console.print(current_revision(get_settings().resolved_database_url) or "empty")


def _job_runner(network, demo_url: str | None):
    from services.clearing.jobs import ledger_jobs
    from shared.jobs.runner import Job, JobRunner

    jobs = ledger_jobs(network)
    if demo_url:
        from services.demo import LiveTraffic

        jobs.append(Job("demo_traffic", 5, LiveTraffic(network, demo_url)))
    return JobRunner(network.db, jobs)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8400, help="Port to listen on."),
    demo: bool = typer.Option(False, "--demo", help="Seed a demo coalition (once) and keep demo traffic flowing."),
    jobs: bool = typer.Option(True, "--jobs/--no-jobs", help="Run the job runner in this process."),
) -> None:
    """Run the whole network in one process: ledger, job runner, partner API and dashboard."""
    import uvicorn

    from services.dashboard.app import create_dashboard
    from services.partner_api.app import create_app

    if demo and "POINTSNET_DASHBOARD_SECURE_COOKIES" not in os.environ:
        os.environ["POINTSNET_DASHBOARD_SECURE_COOKIES"] = "false"  # the demo is plain http on this machine
        get_settings.cache_clear()
    _logging()
    settings = get_settings()
    _upgrade(settings.resolved_database_url)
    network = _network()
    network.keyring, network.signing_key  # generate keys into the data directory on first start
    if demo:
        _seed_demo(network)
    if demo:
        _demo_users(network)
    runner = _job_runner(network, f"http://{_local(host)}:{port}" if demo else None) if jobs else None
    application = create_app(network, on_start=runner.start if runner else None,
                             on_stop=runner.shutdown if runner else None)
    application.mount("/dashboard", create_dashboard(network))
    console.print(f"Pointsnet listening on http://{host}:{port} (database: {network.db.dialect}, "
                  f"data: {settings.data_dir}); dashboard at http://{_local(host)}:{port}/dashboard/")
    tune_for_throughput()
    uvicorn.run(application, host=host, port=port, log_level="warning")


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _seed_demo(network) -> None:
    from services.demo import demo_exists, seed

    if demo_exists(network):
        console.print("demo coalition already seeded; serving it")
        return
    with Progress(TextColumn("seeding demo coalition"), BarColumn(), TextColumn("day {task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("seed", total=None)
        counts = seed(network, progress=lambda done, total: progress.update(task, completed=done, total=total))
    console.print(f"demo: {counts['partners']} partners, {counts['members']} members, "
                  f"{counts['events']} events ({counts['refused']} refused as a real network would), "
                  f"{counts['holds']} holds")


def _demo_users(network) -> None:
    """Demo dashboard users with fresh passwords at every start, printed once."""
    import secrets

    from shared.access import users
    from shared.models import StaffUser

    logins = []
    for email, role in (("operator@demo.pointsnet", "operator"), ("checker@demo.pointsnet", "operator"),
                        ("finance@demo.pointsnet", "finance")):
        password = secrets.token_urlsafe(12)
        hashed = users.new_password(password)

        def unit(tx, email=email, role=role, password=hashed):
            if tx.session.query(StaffUser).filter_by(email=email).first():
                users.set_password(tx, email, password)
            else:
                users.add_user(tx, email, role, password)

        network.tx(unit)
        logins.append((email, role, password))
    table = Table("dashboard user", "role", "password", title="Demo dashboard logins (new passwords at each start)")
    for email, role, password in logins:
        table.add_row(email, role, password)
    console.print(table)


@app.command("serve-dashboard")
def serve_dashboard(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8402, help="Port to listen on."),
) -> None:
    """Run the operator and finance dashboard alone (at /dashboard), e.g. behind the same nginx as
    the API processes. The schema must be current."""
    import uvicorn
    from fastapi import FastAPI

    from services.dashboard.app import create_dashboard
    from shared.db.migrate import is_current

    _logging()
    settings = get_settings()
    if not is_current(settings.resolved_database_url):
        fail("the database schema is not current: run `pointsnet db upgrade` first")
    from shared.network import Network

    network = Network(settings)
    root = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    root.mount("/dashboard", create_dashboard(network))
    console.print(f"Pointsnet dashboard listening on http://{host}:{port}/dashboard/ (database: {network.db.dialect})")
    uvicorn.run(root, host=host, port=port, log_level="warning")


@app.command("serve-api")
def serve_api(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8400, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="API processes sharing this port (one Python process uses "
                                               "one core at most)."),
) -> None:
    """Run the partner API (no jobs): one process, or --workers processes on one port. Run as many as
    needed behind a load balancer; the schema must be current (`pointsnet db upgrade` is an explicit
    deployment step)."""
    import uvicorn

    from services.partner_api.app import from_environment
    from shared.db.migrate import is_current

    _logging()
    settings = get_settings()
    if not is_current(settings.resolved_database_url):
        fail("the database schema is not current: run `pointsnet db upgrade` first")
    # one process, or each of the workers, sets itself up the same way: from_environment
    if workers == 1:
        application = from_environment()  # fails now, not on the first request, if keys are missing
        dialect = application.state.network.db.dialect
    else:
        from shared.network import Network

        network = Network(settings)
        network.keyring, network.signing_key  # fail here, not in every worker, if keys are missing
        dialect = network.db.dialect
        network.close()
    console.print(f"Pointsnet API listening on http://{host}:{port} (database: {dialect}"
                  + (f", {workers} processes)" if workers > 1 else ")"))
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_level="warning")
    else:
        uvicorn.run("services.partner_api.app:from_environment", factory=True, host=host, port=port,
                    workers=workers, log_level="warning")


network_keys_app = typer.Typer(help="The network's own keys (response signing, personal data).",
                                no_args_is_help=True)
app.add_typer(network_keys_app, name="keys")


@network_keys_app.command("init")
def keys_init() -> None:
    """Create the network's keys in the data directory if they are not configured; print the public key id.
    Run once before starting several processes on one data directory."""
    from shared.config import get_settings as settings_now
    from shared.keys import load_pii_keyring, load_signing_key
    from shared.signing import network_key_id

    settings = settings_now()
    key = load_signing_key(settings)
    active, _ = load_pii_keyring(settings)
    print(json.dumps({"signing_key_id": network_key_id(key), "pii_active_key": active}))


@network_keys_app.command("rotate")
def keys_rotate(
    batch_size: int = typer.Option(500, min=1, help="Members re-sealed per transaction."),
    activate: Optional[str] = typer.Option(None, "--activate", metavar="KEY_ID",
                                           help="Skip phase 1: make KEY_ID, added by an earlier `pointsnet keys "
                                                "rotate` and known to every process by now, the active key "
                                                "(with POINTSNET_PII_KEYS: stage that keyring)."),
    reencrypt_only: bool = typer.Option(False, "--reencrypt-only",
                                        help="Change no key: re-seal under the active key (after the key change "
                                             "was deployed in POINTSNET_PII_KEYS, or to resume)."),
    settle_seconds: float = typer.Option(5.0, min=0, help="Wait after each change of the key file, so that every "
                                                          "process reads it and requests in flight with the "
                                                          "previous keyring finish first."),
) -> None:
    """Rotate the personal-data key in two phases, then re-encrypt every ciphertext and re-compute every
    blind-index value under the new key, in bounded batches, while the network runs.

    Phase 1 adds the new key inactive (every process looks members up under it, nobody seals with it);
    phase 2 makes it active once every process knows it, so no process can miss a member enrolled by
    another and enrol the same person twice. With a key file the command does both, waiting
    --settle-seconds after each; with POINTSNET_PII_KEYS it stages each phase for the operator to deploy.
    Old keys stay in the keyring (lookups try every key) until `pointsnet keys retire`."""
    import time

    from shared.config import get_settings as settings_now
    from shared.keys import activate_pii_key, add_pii_key, keyring_with_active_key, load_pii_keyring, pii_key_file
    from shared.members.rotation import stale_count

    _logging()
    if activate is not None and reencrypt_only:
        fail("--activate and --reencrypt-only do not go together: activate first, then re-encrypt")
    settings = settings_now()
    load_pii_keyring(settings)  # a keyring that does not load is a configuration error, before any change
    if pii_key_file(settings) is None:
        if not reencrypt_only:
            _stage_next_keyring(settings, activate)
            return
    elif not reencrypt_only:
        try:
            if activate is None:
                activate = add_pii_key(settings)
                err.print(f"phase 1: added the personal-data key {activate}, not active yet; waiting "
                          f"{settle_seconds:g} s for every process to read it", highlight=False)
            else:  # resuming: the key must be in the file, and every process must have read it (wait again)
                keyring_with_active_key(_key_file_json(settings), activate)
                err.print(f"phase 1: the personal-data key {activate} is in the key file; waiting "
                          f"{settle_seconds:g} s for every process to have read it", highlight=False)
            time.sleep(settle_seconds)
            activate_pii_key(settings, activate)
        except (ValueError, OSError) as exc:
            fail(_key_file_error(exc))
        err.print(f"phase 2: {activate} is the active personal-data key; waiting {settle_seconds:g} s for every "
                  f"process to read it", highlight=False)
        time.sleep(settle_seconds)
    network = _network()
    keyring = network.keyring
    resealed = network.rotate_personal_data(batch_size)
    left = network.tx(lambda tx: stale_count(tx, keyring.active.id), readonly=True)
    print(json.dumps({"active_key": keyring.active.id, "resealed": resealed, "left": left,
                      "old_keys": sorted(k for k in keyring.keys if k != keyring.active.id)}))
    if left:
        fail(f"{left} members are still sealed under an older key; run `pointsnet keys rotate --reencrypt-only`")


def _key_file_json(settings) -> dict:
    from shared.keys import pii_key_file

    return json.loads(pii_key_file(settings).read_text())


def _key_file_error(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"cannot change the personal-data key file: {exc.strerror or exc}"
    return str(exc)


def _stage_next_keyring(settings, activate: str | None) -> None:
    """Keys from POINTSNET_PII_KEYS, which no command can change: write the next phase's keyring to
    an owner-only file beside the data and tell the operator how to deploy it."""
    from shared.keys import keyring_with_active_key, keyring_with_new_key, write_keyring

    current = json.loads(settings.pii_keys)
    staged = settings.data_dir / "keys" / "pii-keys.next.json"
    def stage(data: dict) -> None:
        try:
            write_keyring(staged, data)
        except OSError as exc:
            fail(f"cannot write {staged}: {exc.strerror or exc}")

    if activate is None:
        data, key_id = keyring_with_new_key(current)
        stage(data)
        print(json.dumps({"added_key": key_id, "active_key": data["active"], "resealed": 0,
                          "next_keyring_file": str(staged)}))
        err.print(f"personal-data keys come from POINTSNET_PII_KEYS, which this command cannot change. Phase 1: "
                  f"a keyring with the new key {key_id} NOT active yet (and every current key, "
                  f"{data['active']} still active) is in {staged} (owner-only). 1) Put its content in "
                  f"POINTSNET_PII_KEYS of every process and restart them all; 2) once every process runs with "
                  f"it, run `pointsnet keys rotate --activate {key_id}` with it in POINTSNET_PII_KEYS.",
                  highlight=False)
        return
    try:
        data = keyring_with_active_key(current, activate)
    except ValueError as exc:
        fail(f"POINTSNET_PII_KEYS: {exc}")
    stage(data)
    print(json.dumps({"activated_key": activate, "active_key": activate, "resealed": 0,
                      "next_keyring_file": str(staged)}))
    err.print(f"Phase 2: a keyring with {activate} active (and every current key) is in {staged} (owner-only). "
              f"1) Put its content in POINTSNET_PII_KEYS of every process and restart them all; 2) then run "
              f"`pointsnet keys rotate --reencrypt-only` with it in POINTSNET_PII_KEYS; 3) delete {staged}.",
              highlight=False)


@network_keys_app.command("retire")
def keys_retire(key_id: str) -> None:
    """Remove an old personal-data key from the key file, once nothing is sealed under it any more."""
    from shared.config import get_settings as settings_now
    from shared.keys import retire_pii_key
    from shared.members.rotation import stale_count

    network = _network()
    active = network.keyring.active.id
    left = network.tx(lambda tx: stale_count(tx, active), readonly=True)
    if left:
        fail(f"{left} members are still sealed under an older key; run `pointsnet keys rotate --reencrypt-only`")
    try:
        retire_pii_key(settings_now(), key_id)
    except (ValueError, OSError) as exc:
        fail(_key_file_error(exc))
    print(json.dumps({"retired": key_id, "active_key": active}))


@app.command()
def worker(
    metrics_port: int = typer.Option(0, help="Serve Prometheus metrics on this port (0: off)."),
    metrics_host: str = typer.Option("127.0.0.1", help="Address the metrics port listens on: 127.0.0.1 (the "
                                     "default) lets only this machine scrape it; 0.0.0.0 lets other hosts, e.g. "
                                     "Prometheus in another container."),
) -> None:
    """Run only the job runner (one of several workers leads; the others stand by). The schema must be
    current (`pointsnet db upgrade`)."""
    from shared.db.migrate import is_current
    from shared.network import Network

    _logging()
    settings = get_settings()
    if not is_current(settings.resolved_database_url):
        fail("the database schema is not current: run `pointsnet db upgrade` first")
    network = Network(settings)
    network.keyring, network.signing_key  # fail now, not in the first job, if keys are misconfigured
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)
    runner = _job_runner(network, None)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runner.start()
    console.print("worker running; Ctrl-C to stop")
    stop.wait()
    runner.shutdown()


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

    network = _network()
    public_key = network.signing_key.public_key()
    report = network.tx(lambda tx: run_verify(tx, public_key=public_key, workers=jobs), readonly=True)
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
        console.print(table)
        console.print(", ".join(f"{count} {table_name}" for table_name, count in report.counts.items()))
        for offence in report.offences:
            err.print(f"{offence.check}: {offence.subject}: {offence.detail}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


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
        table.add_row(r.total, r.subject, str(r.kept), str(r.summed))
    console.print(table)


@partners_app.command("add")
def partners_add(
    name: str,
    public_key: Optional[Path] = typer.Option(None, "--public-key", help="The partner's Ed25519 public key (PEM)."),
    billing: str = typer.Option("postpaid", help="postpaid or prepaid"),
    point_value: str = typer.Option("1", help="Minor units one redeemed point is worth to the redeemer."),
    issuance_fee: str = typer.Option("0", help="Network fee per point issued, in minor units."),
    redemption_fee_rate: str = typer.Option("0", help="Share of a reimbursement paid to the network, e.g. 0.05."),
    breakage_share: str = typer.Option("0", help="Share of expired prepaid value the network keeps."),
    base_rate: str = typer.Option("1", help="Points per major currency unit spent."),
    float_overdraft: str = typer.Option("0", help="Prepaid only: issuance may take the float this far below zero "
                                                  "(minor units); 'none' for no float limit."),
    exposure_limit: Optional[int] = typer.Option(None, help="Alert when the partner's outstanding points are "
                                                            "worth more than this (minor units)."),
) -> None:
    """Register a partner (contract version 1, optionally its first key); prints JSON."""
    from shared.partners import keys
    from shared.partners.contracts import ContractTerms, create_partner
    from shared.partners.limits import set_limits

    key_text = _read_text(public_key) if public_key else None
    network = _network()
    terms = ContractTerms(billing, point_value, issuance_fee, redemption_fee_rate, breakage_share, base_rate)
    overdraft = _optional_minor(float_overdraft, "--float-overdraft") if billing == "prepaid" else None

    def unit(tx):
        created = create_partner(tx, name, terms)
        if key_text:
            created["key_id"] = keys.add_key(tx, created["partner_id"], key_text)["key_id"]
        if overdraft is not None or exposure_limit is not None:
            created["limits"] = set_limits(tx, created["partner_id"], float_overdraft_minor=overdraft,
                                           exposure_limit_minor=exposure_limit)
        return created

    print(json.dumps(network.tx(unit)))


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        fail(f"cannot read {path}: not a text file")


@keys_app.command("add")
def keys_add(partner_id: str, public_key: Path = typer.Option(..., "--public-key", help="Ed25519 public key (PEM).")):
    """Add a key to a partner (at most two active: rotate by adding, then revoking the old one)."""
    from shared.partners import keys

    text = _read_text(public_key)
    print(json.dumps(_network().tx(lambda tx: keys.add_key(tx, partner_id, text))))


@keys_app.command("revoke")
def keys_revoke(key_id: str):
    """Revoke a key at once: requests signed with it are refused from now on."""
    from shared.partners import keys

    print(json.dumps(_network().tx(lambda tx: keys.revoke_key(tx, key_id))))


@keys_app.command("list")
def keys_list(partner_id: str):
    """List a partner's keys."""
    from shared.partners import keys
    from shared.partners.contracts import require_partner

    def unit(tx):
        require_partner(tx, partner_id)  # an unknown partner is an error, not an empty list
        return keys.list_keys(tx, partner_id)

    print(json.dumps(_network().tx(unit, readonly=True), indent=2))


@partners_app.command("keygen")
def partners_keygen(out: Path = typer.Option(Path("partner-key"), help="Path prefix: writes PREFIX.pem and PREFIX.pub.pem")):
    """Write a new Ed25519 key pair for a partner to keep (the private key never leaves the partner)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from shared.signing import private_key_pem, public_key_pem

    private, public = out.with_suffix(".pem"), out.with_suffix(".pub.pem")
    if private.exists():
        fail(f"{private} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    private.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key_pem(key))
    public.write_bytes(public_key_pem(key.public_key()))
    print(json.dumps({"private_key": str(private), "public_key": str(public)}))


@app.command("partner-call")
def partner_call(
    method: str,
    path: str,
    body: Optional[str] = typer.Option(None, "--json", help="JSON body (or @file)."),
    key_file: Path = typer.Option(..., help="The partner's private key (PEM)."),
    key_id: str = typer.Option(..., help="The key id the network gave for it."),
    url: str = typer.Option("http://127.0.0.1:8400", help="The network's base URL."),
    idempotency_key: Optional[str] = typer.Option(None, help="Reuse a key to retry an operation."),
) -> None:
    """Call the partner API by hand: signs the request, verifies the signed answer, prints it."""
    from shared.sdk import PointsnetAPIError, PointsnetClient
    from shared.signing import load_private_key

    payload = None
    if body is not None:
        text = _read_text(Path(body[1:])) if body.startswith("@") else body
        try:
            payload = json.loads(text)
        except ValueError as exc:
            fail(f"--json is not valid JSON: {exc}")
    try:
        private_key = load_private_key(key_file.read_bytes())
    except OSError as exc:
        fail(f"cannot read {key_file}: {exc.strerror or exc}")
    except (ValueError, TypeError):  # not PEM, not Ed25519, or encrypted
        fail(f"{key_file} is not an unencrypted Ed25519 private key (PEM)")
    client = PointsnetClient(url, key_id, private_key)
    try:
        answer = client.call(method, path, payload, idempotency_key=idempotency_key)
    except PointsnetAPIError as error:
        print(json.dumps(error.problem, indent=2))
        raise typer.Exit(1)
    print(json.dumps(answer.body, indent=2))


def _set_partner_status(partner_id: str, status: str) -> None:
    from shared.partners.lifecycle import set_status

    print(json.dumps(_network().tx(lambda tx: set_status(tx, partner_id, status))))


@partners_app.command("suspend")
def partners_suspend(partner_id: str) -> None:
    """Suspend a partner: the API refuses its requests with 403 partner_suspended; settlement continues."""
    _set_partner_status(partner_id, "suspended")


@partners_app.command("reactivate")
def partners_reactivate(partner_id: str) -> None:
    """Lift a suspension (a terminated partner cannot come back)."""
    _set_partner_status(partner_id, "active")


@partners_app.command("terminate")
def partners_terminate(partner_id: str,
                       buy_out_rate: Optional[str] = typer.Option(
                           None, help="Buy the partner's outstanding points out at this share of their value "
                                      "(e.g. 0.8); without it, the partner keeps paying for them.")) -> None:
    """Terminate a partner: the open cycle is its last; its points stay redeemable elsewhere. It keeps
    reimbursing their redemptions, or with --buy-out-rate pays once and the network takes them over."""
    from shared.money import rate_to_ppm
    from shared.partners.lifecycle import terminate

    rate = None if buy_out_rate is None else rate_to_ppm(buy_out_rate, what="--buy-out-rate")
    settlement = "keep_paying" if rate is None else "buy_out"
    print(json.dumps(_network().tx(lambda tx: terminate(tx, partner_id, settlement=settlement,
                                                        buy_out_rate_ppm=rate))))


def _optional_minor(text: str, option: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        fail(f"{option} takes a whole number of minor units or 'none', not {text!r}")
    if value < 0:
        fail(f"{option} must be 0 or more")
    return value


@partners_app.command("limits")
def partners_limits(
    partner_id: str,
    float_overdraft: Optional[str] = typer.Option(None, help="Minor units below zero the float may go; 'none' "
                                                             "lifts the float limit."),
    exposure_limit: Optional[str] = typer.Option(None, help="Exposure alert limit in minor units; 'none' lifts it."),
    exposure_warn: Optional[str] = typer.Option(None, help="Share of the exposure limit that raises a warning, "
                                                           "e.g. 0.8."),
) -> None:
    """Show or change a partner's finance limits; prints JSON."""
    from shared.money import rate_to_ppm
    from shared.partners.limits import _limits, limits_json, set_limits

    changes: dict = {}
    if float_overdraft is not None:
        changes["float_overdraft_minor"] = _optional_minor(float_overdraft, "--float-overdraft")
    if exposure_limit is not None:
        changes["exposure_limit_minor"] = _optional_minor(exposure_limit, "--exposure-limit")
    if exposure_warn is not None:
        changes["exposure_warn_ppm"] = rate_to_ppm(exposure_warn, what="--exposure-warn")

    def unit(tx):
        if changes:
            return set_limits(tx, partner_id, **changes)
        from shared.partners.contracts import require_partner

        require_partner(tx, partner_id)
        return limits_json(_limits(tx, partner_id))

    print(json.dumps({"partner_id": partner_id} | _network().tx(unit)))


@partners_app.command("list")
def partners_list() -> None:
    """List partners."""
    from sqlalchemy import select

    from shared.models import Partner

    from shared.partners.lifecycle import lifecycle_status

    network = _network()
    rows, status = network.tx(lambda tx: (tx.session.execute(select(Partner.id, Partner.name)
                                                              .order_by(Partner.name)).all(), lifecycle_status(tx)),
                              readonly=True)
    table = Table("partner id", "name", "status")
    for partner_id, name in rows:
        table.add_row(partner_id, name, status[partner_id])
    console.print(table)


# services.bench.SCENARIOS, named here so that --help need not import the benchmarks
BENCH_SCENARIOS = ("batch-post, settle, expire, report, dashboard, peers, verify, batch-ingest, single-earn, "
                   "hot-member, history")


@app.command()
def bench(
    scenarios: Optional[list[str]] = typer.Argument(None, help="Scenarios to run (default: all but peers, which needs "
                                                                "--database-url): " + BENCH_SCENARIOS),
    database_url: Optional[str] = typer.Option(None, help="Run against a fresh database on this server."),
    events: Optional[int] = typer.Option(None, help="Events to post in batch-post and peers (default: by --scale)."),
    batch_size: int = typer.Option(1000, help="Events per batch."),
    members: int = typer.Option(5000, help="Members in the benchmark network."),
    lots: Optional[int] = typer.Option(None, help="Due lots in the expire scenario (default: by --scale; "
                                                  "full is 1000000)."),
    json_file: Optional[str] = typer.Option(None, "--json", help="Write a machine-readable record here."),
    api_workers: int = typer.Option(1, min=1, help="API processes of the HTTP scenarios' serve-api (--workers)."),
    scale: str = typer.Option("small", help="small (seconds, the test suite's size), medium, or full (the "
                                            "performance targets' sizes)."),
    check_direct: bool = typer.Option(True, "--check-direct/--no-check-direct",
                                      help="report: also build both reports directly from the ledger, timed and "
                                           "checked equal to the roll-up path (minutes at --scale full)."),
) -> None:
    """Measure the network's speed on a fresh database."""
    from services.bench import SCALES, SCENARIOS, run_bench

    if scale not in SCALES:
        fail(f"--scale is one of small, medium, full, not {scale!r}")
    # peers compares with PostgreSQL's COPY: part of the default set only on PostgreSQL
    chosen = scenarios or [s for s in SCENARIOS if database_url or s != "peers"]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        fail(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if "peers" in chosen and not database_url:
        fail("the peers scenario runs on PostgreSQL: give --database-url")
    run_bench(chosen, database_url=database_url, events=events, batch_size=batch_size, members=members,
              json_file=json_file, console=console, lots=lots, scale=scale, check_direct=check_direct,
              api_workers=api_workers)


def _cycle(text: str):
    from shared.reports.period import parse_date

    try:
        return parse_date(text)
    except ValueError:
        fail(f"--cycle must be a date YYYY-MM-DD, not {text!r}")


@clearing_app.command("run")
def clearing_run(cycle: str = typer.Option(..., help="The cycle (business day) to settle, YYYY-MM-DD.")) -> None:
    """Close and settle one cycle by hand; for a settled cycle, change nothing and say so."""
    result = _network().settle(_cycle(cycle))
    if result["already_settled"]:
        err.print(f"cycle {cycle} was already settled; nothing changed")
    print(json.dumps({"cycle_date": result["cycle_date"], "run_id": result["run_id"],
                      "directory": result["directory"]}))


@clearing_app.command("list")
def clearing_list() -> None:
    """Settlements per cycle and party, with their payment status (overdue flagged)."""
    from sqlalchemy import select

    from shared.models import Settlement

    network = _network()
    rows = network.tx(lambda tx: tx.session.execute(select(Settlement).order_by(
        Settlement.cycle_date, Settlement.party)).scalars().all(), readonly=True)
    today = network.clock.now().date()
    table = Table("cycle", "party", "net (minor units)", "from float", "by bank", "payment date", "status",
                  "bank reference")
    for row in rows:
        overdue = row.status == "due" and row.payment_date < today
        from_float = row.from_float_minor  # kept by settlement: what the float settled then
        table.add_row(row.cycle_date.isoformat(), row.party, str(row.net_minor), str(from_float) if from_float else "",
                      str(row.by_bank_minor), row.payment_date.isoformat(),
                      "[red]overdue[/]" if overdue else row.status, row.bank_reference or "")
    console.print(table)


@clearing_app.command("top-up")
def clearing_top_up(partner_id: str,
                    amount: int = typer.Option(..., help="Money received into the float, in minor units."),
                    bank_reference: str = typer.Option(..., help="The bank's reference of the transfer.")) -> None:
    """Record a prepaid partner's top-up of its float (the same bank reference twice changes nothing)."""
    from shared.partners.limits import record_topup

    print(json.dumps(_network().tx(lambda tx: record_topup(tx, partner_id, amount, bank_reference))))


@clearing_app.command("float")
def clearing_float(partner_id: str) -> None:
    """A prepaid partner's float: top-ups, prepaid funding drawn, balance and headroom; prints JSON."""
    from shared.partners.contracts import require_partner
    from shared.partners.limits import float_status

    def unit(tx):
        require_partner(tx, partner_id)
        return float_status(tx, partner_id)

    print(json.dumps(_network().tx(unit, readonly=True)))


@clearing_app.command("exposure")
def clearing_exposure(as_json: bool = typer.Option(False, "--json"),
                      alert: bool = typer.Option(False, "--alert", help="Also raise alerts (as the hourly job does).")
                      ) -> None:
    """Every partner's outstanding postpaid points, their value and its exposure limit."""
    from shared.partners.limits import check_exposure, exposures

    network = _network()
    if alert:
        network.tx(check_exposure)
    rows = [e.json() for e in network.tx(exposures, readonly=True)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("partner", "outstanding points", "value (minor units)", "limit", "state", title="exposure")
    colour = {"exceeded": "red", "near": "yellow"}
    for row in rows:
        state = row["state"]
        table.add_row(row["name"], str(row["outstanding_points"]), str(row["value_minor"]),
                      "" if row["limit_minor"] is None else str(row["limit_minor"]),
                      f"[{colour[state]}]{state}[/]" if state in colour else state)
    console.print(table)


@clearing_app.command("mark-paid")
def clearing_mark_paid(cycle: str = typer.Option(...), party: str = typer.Option(...),
                       bank_reference: str = typer.Option(..., help="The bank's reference of the transfer.")) -> None:
    """Record that a settlement was paid (or received) with its bank reference."""
    from shared.settlement.finance import record_payment

    day = _cycle(cycle)
    print(json.dumps(_network().tx(lambda tx: record_payment(tx, day, party, bank_reference))))


@app.command()
def reconcile(
    directory: Path,
    partner: Optional[str] = typer.Option(None, help="Match this partner's own log against its statement."),
    partner_log: Optional[Path] = typer.Option(None, help="The partner's log: CSV reference,kind,points,amount,time."),
    breaks_csv: Optional[Path] = typer.Option(None, help="Also write the breaks report here as CSV."),
) -> None:
    """Verify a settlement directory against its signature and the ledger; or report a partner's breaks."""
    from shared.settlement import positions
    from shared.settlement.files import statement_name
    from shared.settlement.reconcile import match_partner_log, verify_directory
    from shared.signing import network_key_id

    if not directory.is_dir():
        fail(f"{directory} is not a settlement directory")
    network = _network()
    if partner or partner_log:
        if not (partner and partner_log):
            fail("--partner and --partner-log go together")
        statement = directory / statement_name(partner)
        if not statement.exists():
            fail(f"no statement for {partner} in {directory}")
        log = _read_text(partner_log)  # before the transaction: a missing log is one line, not a traceback
        try:
            breaks = network.tx(lambda tx: match_partner_log(tx, statement.read_bytes(), partner, log),
                                readonly=True)
        except ValueError as exc:
            fail(str(exc))
        table = Table("reference", "break", "ours", "theirs", "reason", title=f"breaks for {partner}")
        for item in breaks:
            table.add_row(item.reference, item.kind, item.ours, item.theirs, item.reason)
        console.print(table if breaks else "no breaks: the partner's log matches its statement")
        if breaks_csv:
            breaks_csv.write_text(positions.breaks_csv(breaks), encoding="utf-8", newline="")  # as the dashboard gives it
        if breaks:
            raise typer.Exit(1)
        return
    key = network.signing_key
    findings = network.tx(lambda tx: verify_directory(tx, directory, {network_key_id(key): key.public_key()}),
                          readonly=True)
    for finding in findings:
        err.print(f"{finding.check}: {finding.subject}: {finding.detail}", highlight=False)
    if findings:
        err.print(f"[bold red]NOT RECONCILED[/]: {len(findings)} difference(s)")
        raise typer.Exit(1)
    console.print(f"[green]reconciled[/]: signature, digests, control totals and recomputation match ({directory})")


@rules_app.command("set")
def rules_set(
    document: Path,
    partner: Optional[str] = typer.Option(None, help="The partner whose rules these are."),
    network_wide: bool = typer.Option(False, "--network", help="Network-wide (network-funded) campaigns."),
    effective_from: Optional[str] = typer.Option(None, help="RFC 3339 instant; default: now."),
) -> None:
    """Validate a rules document and store it as the scope's next version."""
    from shared.clock import parse_instant
    from shared.rules.store import set_rules

    if bool(partner) == network_wide:
        fail("give either --partner ID or --network")
    text = _read_text(document)
    when = None
    if effective_from:
        try:
            when = parse_instant(effective_from)
        except ValueError:
            fail(f"--effective-from must be an RFC 3339 instant, not {effective_from!r}")
    scope = "network" if network_wide else partner
    print(json.dumps(_network().tx(lambda tx: set_rules(tx, scope, text, when))))


@rules_app.command("show")
def rules_show(partner: Optional[str] = typer.Option(None), network_wide: bool = typer.Option(False, "--network")):
    """Print the rules in force now for a partner or the network."""
    from shared.rules.store import rules_in_force

    if bool(partner) == network_wide:
        fail("give either --partner ID or --network")
    scope = "network" if network_wide else partner
    found = _network().tx(lambda tx: rules_in_force(tx, scope, tx.now), readonly=True)
    if found is None:
        fail(f"no rules set for {scope}; earns use the contract's base rate")
    print(json.dumps({"scope": scope, "version": found[0], "rules": found[1].model_dump(mode="json")}, indent=2))


@alerts_app.command("list")
def alerts_list(include_acknowledged: bool = typer.Option(False, "--all", help="Include acknowledged alerts."),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """Open alerts, newest first."""
    from shared.alerts import list_alerts

    rows = _network().tx(lambda tx: list_alerts(tx, include_acknowledged=include_acknowledged), readonly=True)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("id", "kind", "partner", "member", "count", "last", "detail", title="alerts")
    for row in rows:
        table.add_row(str(row["id"]), row["kind"], row["partner_id"] or "", row["member_id"] or "",
                      str(row["count"]), row["last_at"], json.dumps(row["detail"], sort_keys=True))
    console.print(table if rows else "no open alerts")


@alerts_app.command("ack")
def alerts_ack(alert_id: int) -> None:
    """Acknowledge an alert (it stays in the history)."""
    from shared.alerts import acknowledge

    if not _network().tx(lambda tx: acknowledge(tx, alert_id)):
        fail(f"no open alert {alert_id}")
    console.print(f"acknowledged alert {alert_id}")


@webhooks_app.command("set")
def webhooks_set(partner_id: str, url: str = typer.Option(..., "--url", help="Where the partner receives events.")) -> None:
    """Register (or change) a partner's webhook URL; prints the endpoint id and its whsec_ secret."""
    from shared.webhooks.endpoints import set_endpoint

    print(json.dumps(_network().tx(lambda tx: set_endpoint(tx, partner_id, url)), indent=2))


@webhooks_app.command("rotate-secret")
def webhooks_rotate_secret(partner_id: str, overlap_hours: float = typer.Option(
        24, "--overlap-hours", min=0, help="How long the old secret keeps signing too.")) -> None:
    """Give the partner a new secret; the old one keeps signing alongside it during the overlap."""
    from datetime import timedelta

    from shared.webhooks.endpoints import rotate_secret

    print(json.dumps(_network().tx(lambda tx: rotate_secret(tx, partner_id, timedelta(hours=overlap_hours))),
                     indent=2))


@webhooks_app.command("disable")
def webhooks_disable(partner_id: str) -> None:
    """Stop sending to the partner (nothing new is queued; `webhooks set` enables it again)."""
    from shared.webhooks.endpoints import disable_endpoint

    print(json.dumps(_network().tx(lambda tx: disable_endpoint(tx, partner_id)), indent=2))


@webhooks_app.command("show")
def webhooks_show(partner_id: str) -> None:
    """A partner's endpoint (without its secret)."""
    from shared.webhooks.endpoints import show_endpoint

    print(json.dumps(_network().tx(lambda tx: show_endpoint(tx, partner_id), readonly=True), indent=2))


@webhooks_app.command("deliveries")
def webhooks_deliveries(dead: bool = typer.Option(False, "--dead", help="Only dead letters (retries exhausted)."),
                        partner: Optional[str] = typer.Option(None, "--partner", help="Only this partner's."),
                        limit: int = typer.Option(100, "--limit", min=1),
                        as_json: bool = typer.Option(False, "--json")) -> None:
    """Webhook deliveries, newest first: status, attempts, the receiver's last answer."""
    from shared.webhooks.delivery import list_deliveries

    rows = _network().tx(lambda tx: list_deliveries(tx, dead_only=dead, partner_id=partner, limit=limit),
                         readonly=True)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="dead letters" if dead else "webhook deliveries")
    table.add_column("delivery", no_wrap=True)  # ids are copied into `webhooks replay`: never cut
    for column in ("partner", "event", "status", "attempts", "last", "next / done", "last error"):
        table.add_column(column)
    for row in rows:
        last = str(row["last_status_code"] or ("error" if row["last_error"] else ""))
        table.add_row(row["delivery_id"], row["partner_id"], row["event_type"], row["status"], str(row["attempts"]),
                      last, row["next_attempt_at"] or row["delivered_at"] or row["dead_at"] or "",
                      (row["last_error"] or "")[:60])
    console.print(table if rows else ("no dead letters" if dead else "no deliveries"))


@webhooks_app.command("show-delivery")
def webhooks_show_delivery(delivery_id: str) -> None:
    """One delivery with its body and every attempt."""
    from shared.webhooks.delivery import delivery_detail

    print(json.dumps(_network().tx(lambda tx: delivery_detail(tx, delivery_id), readonly=True), indent=2))


@webhooks_app.command("deliver")
def webhooks_deliver() -> None:
    """Run the delivery job once now (the job runner does this every few seconds)."""
    from shared.webhooks.delivery import deliver_due

    print(json.dumps(deliver_due(_network())))


@webhooks_app.command("replay")
def webhooks_replay(delivery_id: str) -> None:
    """Send a delivery again now (same webhook-id, fresh retry window); prints how it went."""
    from shared.webhooks.delivery import replay

    print(json.dumps(replay(_network(), delivery_id), indent=2))


@members_app.command("show")
def members_show(member_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A member's balance, tier (qualifying points, next review), activity status and histories."""
    from shared.programme.summary import member_summary

    view = _network().tx(lambda tx: member_summary(tx, member_id), readonly=True)
    if as_json:
        print(json.dumps(view, indent=2))
        return
    tier = view["tier"] or {}
    console.print(f"member {member_id} (enrolled {view['enrolled_at']})\n"
                  f"balance: {view['balance']['available']} available, {view['balance']['held']} held\n"
                  f"tier: {tier.get('tier', 'tiers off')}, {tier.get('qualifying_points', 0)} qualifying points"
                  f"{', review ' + tier['review_at'] if tier.get('review_at') else ''}\n"
                  f"activity: {view['activity_status']}", highlight=False)
    table = Table("at", "from", "to", "reason", "qualifying points", title="tier history")
    for change in view["tier_history"]:
        table.add_row(change["at"], change["from"], change["to"], change["reason"], str(change["qualifying_points"]))
    console.print(table if view["tier_history"] else "no tier changes")


@members_app.command("merge")
def members_merge(survivor: str, duplicate: str,
                  reason: Optional[str] = typer.Option(None, help="Why (kept with the merge record).")) -> None:
    """Merge DUPLICATE into SURVIVOR: balance, lots, holds, links and history move; the merge is recorded."""
    from shared.programme.merge import merge_members

    print(json.dumps(_network().tx(lambda tx: merge_members(tx, survivor, duplicate, reason=reason)), indent=2))


@members_app.command("erase")
def members_erase(member_id: str,
                  reason: Optional[str] = typer.Option(None, help="The operator's reference for the request "
                                                                   "(kept with the erasure; no personal data).")) -> None:
    """Erase a member's personal data (contact ciphertexts and blind-index values). Its remaining points are
    forfeited as breakage; the ledger keeps its opaque id and stays verifiable. Refused while holds are open."""
    try:
        record = _network().erase_member(member_id, reason=reason)
    except PointsnetError as error:
        fail(f"{error.code}: {error.detail}", 2)
    print(json.dumps(record, indent=2))


@members_app.command("status-counts")
def members_status_counts() -> None:
    """Members by activity status (active, at_risk, dormant), as JSON."""
    from shared.programme.status import status_counts

    print(json.dumps(_network().tx(status_counts, readonly=True)))


REPORT_FORMAT = typer.Option("json", "--format", help="json, csv or html")
REPORT_OUT = typer.Option(None, "--out", help="Write the report to this file instead of standard output.")


def _emit_report(document: str, out: Optional[Path]) -> None:
    if out is None:
        sys.stdout.write(document)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(document, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write the report to {out}: {exc.strerror or exc}")
    err.print(f"wrote {out}", highlight=False)


def _report_period(first: str, last: str, fmt: str):
    from shared.reports.period import Period
    from shared.reports.render import FORMATS

    if fmt not in FORMATS:
        fail(f"--format is one of {', '.join(FORMATS)}, not {fmt!r}")
    return Period.parse(first, last)


@reports_app.command("partner")
def reports_partner(partner_id: str,
                    first: str = typer.Option(..., "--from", help="First cycle, YYYY-MM-DD."),
                    last: str = typer.Option(..., "--to", help="Last cycle, YYYY-MM-DD (included)."),
                    fmt: str = REPORT_FORMAT, out: Optional[Path] = REPORT_OUT) -> None:
    """One partner's performance report for a period of cycles."""
    from shared.reports.service import partner_document

    period = _report_period(first, last, fmt)
    _emit_report(partner_document(_network(), partner_id, period, fmt), out)


@reports_app.command("network")
def reports_network(first: str = typer.Option(..., "--from", help="First cycle, YYYY-MM-DD."),
                    last: str = typer.Option(..., "--to", help="Last cycle, YYYY-MM-DD (included)."),
                    fmt: str = REPORT_FORMAT, out: Optional[Path] = REPORT_OUT) -> None:
    """Network analytics for operators for a period of cycles."""
    from shared.reports.service import network_document

    period = _report_period(first, last, fmt)
    _emit_report(network_document(_network(), period, fmt), out)


@reports_app.command("publish")
def reports_publish() -> None:
    """Write the reports of settled cycles and complete months not written yet (what the job does, all at once)."""
    from shared.reports.delivery import publish_due

    print(json.dumps(publish_due(_network(), limit=None)))


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def users_add(email: str,
              role: str = typer.Option(..., "--role", help="operator, finance or partner_viewer."),
              partner: Optional[str] = typer.Option(None, "--partner", help="The partner a partner_viewer sees."),
              language: str = typer.Option("en", "--language", help="en or zh."),
              password_stdin: bool = typer.Option(False, "--password-stdin",
                                                  help="Read the password from standard input (no prompt).")) -> None:
    """Create a dashboard user (the password is hashed with Argon2id; at least 12 characters)."""
    from shared.access import audit, users

    users.check_role(role, partner)  # a typo in the role is reported before the password is asked for
    password = users.new_password(_password(password_stdin))

    def unit(tx):
        user = users.add_user(tx, email, role, password, partner_id=partner, language=language)
        audit.record(tx, None, "user.added", user["id"], email=user["email"], role=role, partner_id=partner)
        return user

    user = _network().tx(unit)
    console.print(f"added {user['email']} ({user['role']}{', partner ' + partner if partner else ''})")


@users_app.command("list")
def users_list() -> None:
    """Dashboard users and their roles."""
    from shared.access import users

    table = Table("email", "role", "partner", "language", "created", "status")
    for user in _network().tx(users.list_users, readonly=True):
        table.add_row(user["email"], user["role"], user["partner_id"] or "", user["language"], user["created_at"][:19],
                      "disabled" if user["disabled"] else "active")
    console.print(table)


@users_app.command("disable")
def users_disable(email: str) -> None:
    """Disable a user and end all their sessions."""
    from shared.access import audit, users

    def unit(tx):
        user = users.disable_user(tx, email)
        audit.record(tx, None, "user.disabled", user["id"], email=user["email"])

    _network().tx(unit)
    console.print(f"disabled {email}; their sessions are ended")


@users_app.command("password")
def users_password(email: str, password_stdin: bool = typer.Option(False, "--password-stdin")) -> None:
    """Set a user's password (ends their sessions)."""
    from shared.access import audit, users

    password = users.new_password(_password(password_stdin))

    def unit(tx):
        user = users.set_password(tx, email, password)
        audit.record(tx, None, "user.password_set", user["id"], email=user["email"])

    _network().tx(unit)
    console.print(f"password set for {email}; their sessions are ended")


@users_app.command("sign-out")
def users_sign_out(email: str) -> None:
    """End every session of a user (revoke)."""
    from shared.access import audit, sessions, users

    def unit(tx):
        user = users.find_user(tx, email)
        ended = sessions.revoke_user(tx, user.id)
        audit.record(tx, None, "user.sessions_revoked", user.id, sessions=ended)
        return ended

    console.print(f"ended {_network().tx(unit)} session(s) of {email}")


def _configuration_error(error: ValidationError) -> str:
    """One line naming each POINTSNET_* variable that is wrong and what is wrong with it (not its
    value: it may be a database URL with a password)."""
    parts = []
    for problem in error.errors():
        variable, *within = problem["loc"]
        where = f" (at {'.'.join(str(part) for part in within)})" if within else ""
        parts.append(f"POINTSNET_{str(variable).upper()}{where}: {problem['msg']}")
    return "; ".join(parts)


def _undecodable_setting(error: SettingsError) -> str:
    """One line naming the variable whose value could not be decoded (not its value)."""
    field = re.search(r'field "([^"]+)"', str(error))
    variable = f"POINTSNET_{field.group(1).upper()}" if field else "a POINTSNET_* variable"
    cause = error.__cause__
    reason = f"not valid JSON ({cause.msg})" if isinstance(cause, json.JSONDecodeError) else "cannot be decoded"
    return f"{variable}: {reason}"


def main() -> None:
    try:
        app()
    except ValidationError as error:
        if error.title != "Settings":  # not the configuration: not ours to word
            raise
        err.print(f"[bold red]configuration error:[/] {_configuration_error(error)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except SettingsError as error:  # a value pydantic-settings could not even decode (POINTSNET_TIERS not JSON)
        err.print(f"[bold red]configuration error:[/] {_undecodable_setting(error)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyConfigurationError as error:  # a key file missing, a keyring not JSON
        err.print(f"[bold red]configuration error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (PointsnetError, MoneyError) as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(2)
    except SQLAlchemyError as error:
        err.print(f"[bold red]database error:[/] {str(error.orig if hasattr(error, 'orig') else error).splitlines()[0]}",
                  highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
