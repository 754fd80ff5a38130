"""The production shape on this machine: two API processes behind a real nginx, two workers, one
PostgreSQL (deploy/cluster.py). One API process is killed under signed traffic; the leading worker
is killed in the middle of a settlement."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, func, select, text

from shared.clock import FixedClock
from shared.config import Settings
from shared.db.database import normalise_url
from shared.models import Entry, Settlement, SettlementRun
from shared.network import Network
from shared.partners.keys import add_key
from shared.sdk import PointsnetClient
from shared.signing import public_key_pem
from tests.conftest import PG_URL
from tests.factories import make_member, make_partner, verify_ok

pytestmark = pytest.mark.postgres
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
_spec = importlib.util.spec_from_file_location("cluster", Path(__file__).parents[2] / "deploy" / "cluster.py")
cluster_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cluster_module)


@pytest.fixture
def nginx():
    if NGINX is None:
        if os.environ.get("CI") or os.environ.get("POINTSNET_REQUIRE_BROWSER"):
            pytest.fail("nginx is missing (.ci/run installs it)")
        pytest.skip("nginx is not installed")
    return NGINX


def wait_until(condition, message: str, timeout: float = 90.0, detail=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{message}: {detail()}"
        time.sleep(0.2)


def _waiting_on_advisory_lock(connection, key1: int, key2: int) -> bool:
    """Whether a session of this database waits for the advisory lock (key1, key2). pg_locks lists the
    locks of every database on the server (the other test worker's too), so the database and the
    keys are named: an (int4, int4) lock shows them as classid, objid and objsubid 2."""
    waiting = connection.execute(text(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND classid = :k1 AND objid = :k2 AND objsubid = 2"), {"k1": key1, "k2": key2}).scalar_one()
    connection.commit()
    return waiting > 0


def _files(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_an_api_process_killed_under_signed_traffic_loses_nothing_and_applies_nothing_twice(
        nginx, database_url, tmp_path):
    network = Network(Settings(data_dir=tmp_path / "cluster" / "data"), database_url=database_url, pool_size=4)
    with cluster_module.Cluster(database_url, tmp_path / "cluster", apis=2, workers=2) as cluster:
        shop = make_partner(network, "Till Co")
        key = Ed25519PrivateKey.generate()
        key_id = network.tx(lambda tx: add_key(tx, shop, public_key_pem(key.public_key()).decode()))["key_id"]
        members = [make_member(network, shop) for _ in range(8)]
        # nginx serves HTTPS with the cluster's self-signed certificate, as the VM site does
        client = PointsnetClient(cluster.url, key_id, key, retries=8, transport=httpx.HTTPTransport(verify=cluster.tls))
        accepted: list[str] = []
        failed: list[tuple[str, Exception]] = []
        lock = threading.Lock()

        def earn(n: int) -> None:
            reference = f"till-{n}"
            try:
                client.earn(members[n % len(members)], reference, points=10)
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                with lock:
                    failed.append((reference, exc))
                return
            with lock:
                accepted.append(reference)

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(earn, n) for n in range(120)]
            time.sleep(0.5)
            cluster.kill("api0")  # SIGKILL mid-traffic: requests in flight on it are cut
            futures += [pool.submit(earn, n) for n in range(120, 200)]
            time.sleep(1.0)
            cluster.start_api(0)  # and it comes back
            futures += [pool.submit(earn, n) for n in range(200, 260)]
            for future in futures:
                future.result(timeout=120)
        client.close()
        # the dashboard runs as its own process behind the same nginx, on its own path
        login = httpx.get(f"{cluster.url}/dashboard/login", timeout=10, verify=cluster.tls)
        assert login.status_code == 200 and 'name="csrf_token"' in login.text
        assert "script-src 'self'" in login.headers["content-security-policy"]
        assert httpx.get(f"{cluster.url}/dashboard/", timeout=10, verify=cluster.tls).headers["location"] == \
            "/dashboard/login"
        # plain HTTP only sends the browser to HTTPS
        plain = httpx.get(f"http://127.0.0.1:{cluster.http_listen}/dashboard/login", timeout=10)
        assert plain.status_code == 301 and plain.headers["location"] == "https://127.0.0.1/dashboard/login"

    assert failed == [], f"requests that never got an answer: {failed[:3]}"
    assert len(accepted) == 260
    references = network.tx(lambda tx: tx.session.execute(
        select(Entry.reference, func.count()).where(Entry.partner_id == shop).group_by(Entry.reference)).all())
    assert {ref: count for ref, count in references} == {ref: 1 for ref in accepted}  # none lost, none twice
    assert sum(network.balance(m)["available"] for m in members) == 260 * 10
    verify_ok(network)
    network.close()


def test_the_leading_worker_killed_mid_settlement_is_taken_over_and_the_cycle_settles_once(
        nginx, database_url, tmp_path):
    cycle = date(2026, 11, 20)
    workdir = tmp_path / "cluster"
    clock = FixedClock(datetime(2026, 11, 20, 2, tzinfo=timezone.utc))
    network = Network(Settings(data_dir=workdir / "data"), database_url=database_url, clock=clock, pool_size=4)
    coffee = make_partner(network, "CoffeeCo", issuance_fee="0.1", redemption_fee_rate="0.05")
    books = make_partner(network, "BookMart", billing="prepaid", issuance_fee="0.1")
    for n in range(10):
        member = make_member(network, coffee, also_linked_to=(books,))
        network.earn(coffee, member, f"e{n}", points=100 + n)
        network.burn(books, member, f"b{n}", 60)
    later = {"POINTSNET_CLOCK": "2026-11-22T03:00:00Z"}  # the cycle of the 20th is due
    directory = workdir / "data" / "settlements" / cycle.isoformat()
    runs = lambda: network.tx(lambda tx: tx.session.execute(  # noqa: E731
        select(func.count()).select_from(SettlementRun).where(SettlementRun.cycle_date == cycle)).scalar_one())
    admin = create_engine(normalise_url(database_url))
    with cluster_module.Cluster(database_url, workdir, apis=1, workers=0, env=later) as cluster, \
            admin.connect() as gate:
        # Hold the cycle's settlement lock so the leader blocks inside the settlement until the
        # standby is up: then the leader writes the files and dies before committing the run.
        gate.execute(text("SELECT pg_advisory_lock(7242003, :d)"), {"d": cycle.toordinal()})
        gate.commit()
        doomed = cluster.start_worker(0, env={"POINTSNET_FAILPOINT": "settlement.after_files"})
        wait_until(lambda: _waiting_on_advisory_lock(gate, 7242003, cycle.toordinal()),
                   "the leader never reached the settlement")
        cluster.start_worker(1)  # the standby
        wait_until(lambda: "worker running" in (workdir / "worker1.log").read_text(), "the standby did not start")
        gate.execute(text("SELECT pg_advisory_unlock(7242003, :d)"), {"d": cycle.toordinal()})
        gate.commit()
        assert doomed.wait(timeout=120) == -9, "the leader should die at the failpoint, mid-settlement"
        assert directory.exists()  # it had written the files ...
        written = _files(directory)
        wait_until(lambda: runs() == 1, "the standby did not take over",
                   detail=lambda: (workdir / "worker1.log").read_text()[-2000:])
        assert _files(directory) == written  # the same files, byte for byte
        assert runs() == 1
        parties = network.tx(lambda tx: tx.session.execute(
            select(func.count()).select_from(Settlement).where(Settlement.cycle_date == cycle)).scalar_one())
        assert parties == 3  # CoffeeCo, BookMart and the network: one settlement each, once
    verify_ok(network)
    network.close()
