"""Operator mistakes on the command line: one line on standard error and a non-zero exit, never a
traceback, and never a server listening somewhere other than where it said (docs/operations.md)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest

from shared.clock import FixedClock
from shared.config import Settings
from shared.network import Network
from shared.ports import free_port
from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.factories import make_member, make_partner


def pointsnet(tmp_path, *args, env=None):
    """``pointsnet ARGS`` on the embedded database of ``tmp_path/data``."""
    return run_pointsnet(*args, env={"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None,
                                     **(env or {})})


def one_line_error(done) -> bool:
    return done.returncode != 0 and "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0


@pytest.fixture
def keys_ready(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    assert pointsnet(tmp_path, "keys", "init").returncode == 0


def test_a_worker_whose_metrics_port_is_taken_says_so_in_one_line(tmp_path, keys_ready, monkeypatch):
    from services.cli import serving

    monkeypatch.setattr(serving, "_job_runner", lambda *_: pytest.fail("the worker started without its metrics"))
    with socket.socket() as taken:  # another worker, or a leftover process, on the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = pointsnet(tmp_path, "worker", "--metrics-port", str(port))
    assert one_line_error(done), done.stderr[-500:]
    assert f"cannot serve metrics on 127.0.0.1 port {port}" in done.stderr, done.stderr


@pytest.mark.parametrize("address", ["", "  "])
def test_a_worker_with_an_empty_metrics_host_is_refused_in_one_line_and_serves_nothing(tmp_path, keys_ready,
                                                                                     monkeypatch, address):
    """An empty address would serve the metrics on every interface: 0.0.0.0 asks for that, as --host of
    the servers (tests/cli/test_serve_demo.py)."""
    import prometheus_client

    from services.cli import serving

    served = []
    monkeypatch.setattr(prometheus_client, "start_http_server", lambda *a, **k: served.append((a, k)))
    monkeypatch.setattr(serving, "_job_runner", lambda *_: pytest.fail("the worker started"))
    done = pointsnet(tmp_path, "worker", "--metrics-port", str(free_port()), "--metrics-host", address)
    assert served == []  # nothing listens
    assert done.returncode == 2 and one_line_error(done), done.stderr[-500:]
    assert "--metrics-host is empty" in done.stderr and "0.0.0.0" in done.stderr, done.stderr


@pytest.fixture
def serving_jobs(tmp_path, keys_ready):
    """``pointsnet serve`` (its job runner on) as a real process on the embedded database of tmp_path/data."""
    env = dict(os.environ, POINTSNET_DATA_DIR=str(tmp_path / "data"))
    env.pop("POINTSNET_DATABASE_URL", None)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "serve did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield server
    finally:
        server.terminate()
        server.wait(timeout=60)
        server.stderr.close()


def test_a_worker_beside_serve_on_one_sqlite_database_refuses_in_one_line(tmp_path, serving_jobs, monkeypatch):
    """SQLite elects no leader: every process is its own, so a worker started beside `serve` (or a
    second worker) ran every scheduled job a second time beside the first runner's."""
    import uvicorn

    from services.cli import serving

    monkeypatch.setattr(serving, "_job_runner", lambda *_: sys.exit("the jobs started beside serve's"))
    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **kw: pytest.fail("served beside serve's jobs"))
    worker = pointsnet(tmp_path, "worker")
    assert worker.returncode == 1 and one_line_error(worker), worker.stderr[-500:]
    assert "already runs the jobs" in worker.stderr, worker.stderr
    second = pointsnet(tmp_path, "serve", "--port", str(free_port()))
    assert second.returncode == 1 and one_line_error(second) and "already runs the jobs" in second.stderr, (
        second.stderr[-500:])


@pytest.mark.parametrize("command", [("serve", "--no-jobs"), ("serve-api",), ("serve-api", "--workers", "2"),
                                     ("serve-dashboard",)])
def test_a_server_whose_port_is_taken_says_so_in_one_line_and_never_that_it_listens(tmp_path, keys_ready,
                                                                                    monkeypatch, command):
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **kw: pytest.fail("served on a port another holds"))
    with socket.socket() as taken:  # another server, or a leftover process, on the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = pointsnet(tmp_path, *command, "--port", str(port))
    assert one_line_error(done) and "listening" not in done.stdout, (done.stdout, done.stderr[-500:])
    assert f"cannot serve on 127.0.0.1 port {port}: Address already in use" in done.stderr, done.stderr


@pytest.mark.parametrize("command, option", [("serve", "--port"), ("serve-api", "--port"),
                                             ("serve-dashboard", "--port"), ("worker", "--metrics-port")])
@pytest.mark.parametrize("port", ["70000", "65536", "-1"])
def test_a_port_outside_1_to_65535_is_refused_before_anything_listens(tmp_path, keys_ready, monkeypatch,
                                                                     command, option, port):
    """The socket layer would wrap 70000 to 4464 and listen there while the command printed 70000."""
    import prometheus_client
    import uvicorn

    from services.cli import serving

    monkeypatch.setattr(serving, "_job_runner", lambda *_: pytest.fail(f"the worker started on port {port}"))
    listened = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: listened.append(kw.get("port")))
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, **_: listened.append(server.config.port))
    monkeypatch.setattr(prometheus_client, "start_http_server", lambda port, **_: listened.append(port))
    done = pointsnet(tmp_path, command, option, port)
    assert listened == [] and done.returncode == 2 and one_line_error(done), (listened, done.stderr[-500:])
    assert f"Invalid value for '{option}'" in done.stderr and done.stdout == "", done.stderr


@pytest.mark.parametrize("url, says", [("http://127.0.0.1:{port}", "no answer from http://127.0.0.1:{port}"),
                                       ("points.example.com", "--url must be the network's http:// or https://")])
def test_partner_call_to_a_network_it_cannot_reach_is_one_line(tmp_path, url, says):
    key = tmp_path / "shop"
    assert pointsnet(tmp_path, "partners", "keygen", "--out", str(key)).returncode == 0
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    # nothing listens there now
    done = pointsnet(tmp_path, "partner-call", "GET", "/v1/transactions", "--key-file", f"{key}.pem",
                     "--key-id", "key_x", "--url", url.format(port=port))
    assert one_line_error(done) and done.stdout == "", done.stderr[-500:]
    assert says.format(port=port) in done.stderr, done.stderr


def test_partners_keygen_where_it_cannot_write_is_one_line(tmp_path):
    (tmp_path / "keys").write_text("not a directory\n")
    done = pointsnet(tmp_path, "partners", "keygen", "--out", str(tmp_path / "keys" / "shop"))
    assert one_line_error(done) and done.stdout == "", done.stderr[-500:]
    assert f"cannot write the key pair to {tmp_path / 'keys' / 'shop'}" in done.stderr, done.stderr


def test_reconcile_with_breaks_csv_naming_a_directory_is_one_line(network, clock, database_url, tmp_path):
    coffee = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
    book = make_partner(network, "BookMart", billing="postpaid", point_value="1")
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "coffee-1", points=500)
    network.burn(book, member, "book-1", 200)
    clock.advance(days=1)
    network.settle(date(2026, 11, 20))
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}
    log = tmp_path / "log.csv"
    log.write_text("reference,kind,points,amount,time\nbook-1,burn,200,999,2026-11-20T02:10:00Z\n")
    (tmp_path / "reports").mkdir()
    done = run_pointsnet("reconcile", str(network.settings.data_dir / "settlements" / "2026-11-20"),
                         "--partner", book, "--partner-log", str(log), "--breaks-csv", str(tmp_path / "reports"),
                         env=env)
    assert one_line_error(done), done.stderr[-500:]
    assert f"cannot write the breaks report to {tmp_path / 'reports'}" in done.stderr, done.stderr


@pytest.mark.parametrize("zone, earned_at, instant, status", [
    # 20:00 on the payment date 2026-11-20 in New York, already the 21st in UTC: due, not overdue
    ("America/New_York", "2026-11-20T02:00:00Z", "2026-11-21T01:00:00Z", "due"),
    # 07:00 on 2026-11-21 in Shanghai, still the 20th in UTC: the payment date has passed there
    ("Asia/Shanghai", "2026-11-19T02:00:00Z", "2026-11-20T23:00:00Z", "overdue"),
])
def test_clearing_list_flags_overdue_after_the_payment_date_in_the_networks_time_zone(
        tmp_path, database_url, zone, earned_at, instant, status):
    """Payment dates are business days of the network's time zone (ARCHITECTURE.md, "Time"), as on
    the dashboard's Settlement page: a settlement is overdue from the day after its payment date there."""
    from shared.models import Settlement

    settings = Settings(data_dir=Path(tmp_path) / "data", timezone=zone)
    clock = FixedClock(datetime.fromisoformat(earned_at))  # on 2026-11-19 in the network's zone
    network = Network(settings, database_url=database_url, clock=clock)
    try:
        coffee = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
        book = make_partner(network, "BookMart", billing="postpaid", point_value="1")
        member = make_member(network, coffee, also_linked_to=(book,))
        network.earn(coffee, member, "e1", points=500)
        network.burn(book, member, "b1", 200)
        clock.advance(days=1)
        assert not network.settle(date(2026, 11, 19)).get("already_settled")
        payment_dates = network.tx(lambda tx: {row.payment_date for row in tx.session.query(Settlement)},
                                   readonly=True)
    finally:
        network.close()
    assert payment_dates == {date(2026, 11, 20)}, payment_dates
    done = run_pointsnet("clearing", "list", env={
        "POINTSNET_DATA_DIR": str(settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
        "POINTSNET_TIMEZONE": zone, "POINTSNET_CLOCK": instant, "COLUMNS": "250"})
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "2026-11-19" in line and "2026-11-20" in line]
    partners = [row for row in rows if "ptn_" in row]  # the debtor and the creditor, both due
    assert len(partners) == 2 and all(("overdue" in row) == (status == "overdue") for row in partners), done.stdout


@pytest.mark.parametrize("args, says", [
    (("clearing", "run"), "error: Missing option '--cycle'."),
    (("clearing", "top-up", "ptn_x", "--amount", "many", "--bank-reference", "BK-1"),
     "error: Invalid value for '--amount': "),
    (("no-such-command",), "error: No such command 'no-such-command'."),
])
def test_a_usage_mistake_is_one_line_and_exit_2(tmp_path, args, says):
    done = pointsnet(tmp_path, *args)
    assert done.returncode == 2 and one_line_error(done) and done.stdout == "", done.stderr
    assert done.stderr.startswith(says), done.stderr


def test_a_group_without_a_command_still_prints_its_help(tmp_path):
    done = pointsnet(tmp_path, "clearing")
    assert done.returncode == 2 and "top-up" in done.stdout and done.stderr == "", done.stderr
    assert pointsnet(tmp_path, "clearing", "--help").returncode == 0
