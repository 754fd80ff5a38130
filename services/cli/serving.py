"""Serving the network: the schema, the servers, the job runner and the demo."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from contextlib import contextmanager, nullcontext

import typer
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from shared.config import get_settings
from shared.runtime import tune_for_throughput

from services.cli import TROUBLE, app, db_app, console, fail, _logging, _network, _require_database


def _banner(message: str) -> None:
    """A server's start-up line. With POINTSNET_LOG_FORMAT=json it is one log record (standard error,
    one JSON object, as every other line of the process's log); otherwise one line on standard output,
    never wrapped at the terminal's (or, when not a terminal, 80 columns') width."""
    if get_settings().log_format == "json":
        logging.getLogger("pointsnet.serve").info(message)
    else:
        console.print(message, soft_wrap=True, markup=False, highlight=False)


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

    url = get_settings().resolved_database_url
    _require_database(url)  # it only reads: a missing embedded database is not an empty schema to create
    console.print(current_revision(url) or "empty")


def _job_runner(network, demo_url: str | None):
    from services.clearing.jobs import ledger_jobs
    from shared.jobs.runner import Job, JobRunner

    jobs = ledger_jobs(network)
    if demo_url:
        from services.demo import LiveTraffic

        jobs.append(Job("demo_traffic", 5, LiveTraffic(network, demo_url)))
    return JobRunner(network.db, jobs)


@contextmanager
def _sole_job_runner(network):
    """SQLite elects no job leader (each process leads itself, shared/jobs/runner.py), so `serve` and a
    `worker`, or two of either, on one SQLite database would each run every job (SQLite has one
    writer; a settlement would race itself). The process running the jobs holds an exclusive lock on a
    file beside the database while it runs; another one stops here in one line. (On PostgreSQL the
    runners elect one leader.) The lock ends with the process, however it ends."""
    from shared.db.database import sqlite_file

    path = sqlite_file(network.db.url)
    if path is None:
        yield
        return
    import fcntl

    lock_path = f"{path}.jobs-lock"
    try:
        lock = open(lock_path, "a")
    except OSError as exc:
        fail(f"cannot open {lock_path} to run the jobs: {exc.strerror or exc}", TROUBLE)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fail(f"another process already runs the jobs on the SQLite database {path} (`pointsnet serve` or "
                 "`pointsnet worker`); SQLite has one writer: run one of them, or `serve --no-jobs` beside it",
                 TROUBLE)
        yield
    finally:
        lock.close()  # closing the file releases the lock


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8400, min=1, max=65535, help="Port to listen on."),
    demo: bool = typer.Option(False, "--demo", help="Seed a demo coalition (once) and keep demo traffic flowing."),
    jobs: bool = typer.Option(True, "--jobs/--no-jobs", help="Run the job runner in this process."),
) -> None:
    """Run the whole network in one process: ledger, job runner, partner API and dashboard."""
    _check_host(host)
    from services.dashboard.app import create_dashboard
    from services.partner_api.app import create_app

    if demo and "POINTSNET_DASHBOARD_SECURE_COOKIES" not in os.environ:
        os.environ["POINTSNET_DASHBOARD_SECURE_COOKIES"] = "false"  # the demo is plain http on this machine
        get_settings.cache_clear()
    _logging()
    settings = get_settings()
    _upgrade(settings.resolved_database_url)
    network = _network()
    network.check_keys()  # generate keys into the data directory on first start; stop if not the network's
    with _sole_job_runner(network) if jobs else nullcontext():
        listening = _bound(host, port)  # a port taken stops here, before a demo is seeded
        try:
            if demo:
                _seed_demo(network, settings)
                _demo_users(network)
            runner = _job_runner(network, _base_url(host, port) if demo else None) if jobs else None
            application = create_app(network, on_start=runner.start if runner else None,
                                     on_stop=runner.shutdown if runner else None)
            application.mount("/dashboard", create_dashboard(network))
        except BaseException:
            listening.close()
            raise
        if demo:
            _demo_partner_call(network, _base_url(host, port))
        _banner(f"Pointsnet listening on {_url(host, port)} (database: {network.db.dialect}, "
                f"data: {settings.data_dir}); dashboard at {_base_url(host, port)}/dashboard/")
        tune_for_throughput()
        _serve_on(listening, application, host=host, port=port)


# log_config=None: uvicorn's own loggers (a malformed request, an exception it
# caught, its shutdown) go through the handler of shared.observability.configure_logging like every
# other line, JSON with POINTSNET_LOG_FORMAT=json, instead of uvicorn's own text formatter


def _check_host(host: str, option: str = "--host") -> None:
    """An empty --host (or --metrics-host) would listen on every interface: that is asked for with
    0.0.0.0, never by leaving the address out. Checked before a command does anything else."""
    if not host.strip():
        fail(f"{option} is empty: give the address to listen on (127.0.0.1, or 0.0.0.0 for every interface)", 2)


def _bound(host: str, port: int) -> socket.socket:
    """The server's socket, bound as uvicorn binds it, before anything says it is listening: a port
    another process holds (or an address not of this machine) stops the command in one line, and so does
    an empty address (which would listen on every interface: 0.0.0.0 says so)."""
    _check_host(host)
    listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                              socket.IPPROTO_TCP)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        fail(f"cannot serve on {host} port {port}: {exc.strerror or exc}", TROUBLE)
    listening.set_inheritable(True)
    return listening


def _serve_on(listening: socket.socket, application, **options) -> None:
    """uvicorn.run's own steps for one process, on the socket _bound bound."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", log_config=None, **options))
    try:
        server.run(sockets=[listening])
    except KeyboardInterrupt:
        pass
    finally:
        listening.close()
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE


def _url(host: str, port: int) -> str:
    """http://HOST:PORT, an IPv6 literal in brackets (RFC 3986)."""
    return f"http://[{host}]:{port}" if ":" in host and not host.startswith("[") else f"http://{host}:{port}"


def _base_url(host: str, port: int) -> str:
    """The URL this machine reaches a server listening on ``host`` at: the loopback address for a
    wildcard one."""
    return _url({"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host), port)


class _DayColumn(ProgressColumn):
    """The demo seed's day: ``day 3/30``, or ``day 0`` before the seed has said how many there are."""

    def render(self, task) -> Text:
        total = "" if task.total is None else f"/{task.total:g}"
        return Text(f"day {task.completed:g}{total}")


def _seed_demo(network, settings) -> None:
    from services.demo import demo_state, seed

    state = demo_state(network)
    again = f"remove the data directory {settings.data_dir}" + (
        "" if not settings.database_url else " and empty the database POINTSNET_DATABASE_URL names") + " to seed it again"
    if state == "interrupted":
        fail(f"a previous demo seed was interrupted: {again}", 2)
    if state == "foreign":  # until 2026-12-07 a network with a partner called CoffeeCo got the demo's logins
        fail("this database holds a network that is not the demo's: serve it without --demo (the demo seeds "
             "a fresh data directory and database of its own)", 2)
    if state == "seeded":
        console.print("demo coalition already seeded; serving it")
        return
    with Progress(TextColumn("seeding demo coalition"), BarColumn(), _DayColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("seed", total=None)
        try:
            counts = seed(network, progress=lambda done, total: progress.update(task, completed=done, total=total))
        except KeyboardInterrupt:
            progress.stop()
            fail(f"the demo seed was interrupted: {again}", 130)
    console.print(f"demo: {counts['partners']} partners, {counts['members']} members, "
                  f"{counts['events']} events ({counts['refused']} refused as a real network would), "
                  f"{counts['holds']} holds")


def _demo_partner_call(network, base_url: str) -> None:
    from services.demo import partner_call_line

    line = partner_call_line(network, base_url)
    if line:
        console.print("Try the partner API as the demo partner CoffeeCo:", highlight=False)
        console.print(line, highlight=False, soft_wrap=True, markup=False)


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
    port: int = typer.Option(8402, min=1, max=65535, help="Port to listen on."),
) -> None:
    """Run the operator and finance dashboard alone (at /dashboard), e.g. behind the same nginx as
    the API processes. The schema must be current."""
    _check_host(host)
    from fastapi import FastAPI

    from services.dashboard.app import create_dashboard
    from shared.db.migrate import is_current

    _logging()
    settings = get_settings()
    if not is_current(settings.resolved_database_url):
        fail("the database schema is not current: run `pointsnet db upgrade` first", TROUBLE)
    from shared.network import Network

    network = Network(settings)
    network.pin_cycle_settings()
    root = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    root.mount("/dashboard", create_dashboard(network))
    listening = _bound(host, port)
    _banner(f"Pointsnet dashboard listening on {_url(host, port)}/dashboard/ (database: {network.db.dialect})")
    _serve_on(listening, root, host=host, port=port)


@app.command("serve-api")
def serve_api(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8400, min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="API processes sharing this port (one Python process uses "
                                               "one core at most)."),
) -> None:
    """Run the partner API (no jobs): one process, or --workers processes on one port. Run as many as
    needed behind a load balancer; the schema must be current (`pointsnet db upgrade` is an explicit
    deployment step)."""
    _check_host(host)
    import uvicorn

    from services.partner_api.app import from_environment
    from shared.db.migrate import is_current

    _logging()
    settings = get_settings()
    if not is_current(settings.resolved_database_url):
        fail("the database schema is not current: run `pointsnet db upgrade` first", TROUBLE)
    # one process, or each of the workers, sets itself up the same way: from_environment
    if workers == 1:
        application = from_environment()  # fails now, not on the first request, if keys are missing
        dialect = application.state.network.db.dialect
    else:
        from shared.network import Network

        network = Network(settings)
        network.check_keys()  # fail here, not in every worker, if keys are missing or not the network's
        network.pin_cycle_settings()
        dialect = network.db.dialect
        network.close()
    listening = _bound(host, port)
    if workers > 1:  # uvicorn's supervisor binds the port itself for its processes: free it for it
        listening.close()
    _banner(f"Pointsnet API listening on {_url(host, port)} (database: {dialect}"
            + (f", {workers} processes)" if workers > 1 else ")"))
    if workers == 1:
        _serve_on(listening, application, host=host, port=port)
    else:
        uvicorn.run("services.partner_api.app:from_environment", factory=True, host=host, port=port,
                    workers=workers, log_level="warning", log_config=None)


@app.command()
def worker(
    metrics_port: int = typer.Option(0, min=0, max=65535, help="Serve Prometheus metrics on this port (0: off)."),
    metrics_host: str = typer.Option("127.0.0.1", help="Address the metrics port listens on: 127.0.0.1 (the "
                                     "default) lets only this machine scrape it; 0.0.0.0 lets other hosts, e.g. "
                                     "Prometheus in another container."),
) -> None:
    """Run only the job runner (on PostgreSQL one of several workers leads, the others stand by; on
    SQLite only one process runs the jobs). The schema must be current (`pointsnet db upgrade`)."""
    _check_host(metrics_host, "--metrics-host")
    from shared.db.migrate import is_current
    from shared.network import Network

    _logging()
    settings = get_settings()
    if not is_current(settings.resolved_database_url):
        fail("the database schema is not current: run `pointsnet db upgrade` first", TROUBLE)
    network = Network(settings)
    network.check_keys()  # fail now, not in the first job, if keys are misconfigured or not the network's
    network.pin_cycle_settings()
    with _sole_job_runner(network):
        if metrics_port:
            from prometheus_client import start_http_server

            try:
                start_http_server(metrics_port, addr=metrics_host)
            except OSError as exc:  # the port taken (another worker), or an address not of this machine
                fail(f"cannot serve metrics on {metrics_host} port {metrics_port}: {exc.strerror or exc}", TROUBLE)
        runner = _job_runner(network, None)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        runner.start()
        _banner("worker running; Ctrl-C to stop")
        stop.wait()
        runner.shutdown()
