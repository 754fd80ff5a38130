#!/usr/bin/env python3
"""Run a production-shaped Pointsnet on one machine, without containers.

Two (or more) ``pointsnet serve-api`` processes and a ``pointsnet serve-dashboard`` behind a real
nginx, and two ``pointsnet worker`` processes (one leads), all on one PostgreSQL — the shape of deploy/compose.yaml and of the
systemd units, for drills and for tests/deploy/test_cluster.py. nginx serves HTTPS, as the VM site does, with
a self-signed certificate made for 127.0.0.1 in the working directory (``tls/cert.pem``: trust it, for
example ``curl --cacert DIR/tls/cert.pem``)::

    python deploy/cluster.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/pointsnet \\
        --dir ./cluster-drill --listen 8080

Ctrl-C or SIGTERM stops everything. Needs nginx on the PATH (Debian: apt-get install nginx).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

import datetime
import ipaddress
import ssl

import httpx

from shared.ports import free_port

HERE = Path(__file__).resolve().parent
NGINX_MAIN = """
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/nginx-tmp/body;
    proxy_temp_path {dir}/nginx-tmp/proxy;
    fastcgi_temp_path {dir}/nginx-tmp/fastcgi;
    uwsgi_temp_path {dir}/nginx-tmp/uwsgi;
    scgi_temp_path {dir}/nginx-tmp/scgi;
    include {dir}/site.conf;
}}
"""


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and localhost and its key, written into ``directory``
    (``cert.pem``, ``key.pem``): nginx serves it, and a client trusts it as its own authority."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pointsnet drill")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=7))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                               x509.DNSName("localhost")]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .sign(key, hashes.SHA256()))
    cert, private = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    os.chmod(private, 0o600)
    return cert, private


def wait_http(url: str, timeout: float = 60.0, verify: ssl.SSLContext | bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


class Cluster:
    """The processes of one cluster; every process logs to ``<dir>/<name>.log``."""

    def __init__(self, database_url: str, workdir: Path, *, apis: int = 2, workers: int = 2,
                 listen: int | None = None, env: dict[str, str] | None = None):
        self.database_url = database_url
        self.dir = workdir
        self.listen = listen or free_port()  # HTTPS
        self.http_listen = free_port()  # plain HTTP: redirects to HTTPS, as on a VM
        self.certificate = workdir / "tls" / "cert.pem"
        self.api_ports = [free_port() for _ in range(apis)]
        self.dashboard_port = free_port()
        self.workers = workers
        self.env = dict(os.environ, POINTSNET_DATABASE_URL=database_url, POINTSNET_DATA_DIR=str(workdir / "data"),
                        POINTSNET_LOG_FORMAT="json", PYTHONUNBUFFERED="1", **(env or {}))
        self.env.pop("POINTSNET_FAILPOINT", None)
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.listen}"

    @property
    def tls(self) -> ssl.SSLContext:
        """A client context that trusts the cluster's certificate (for httpx's ``verify=``)."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def pointsnet(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "services.cli", *args], env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=300, check=True)

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "ab")
        process = subprocess.Popen([sys.executable, "-m", "services.cli", *args], env={**self.env, **(env or {})},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def start_api(self, index: int) -> None:
        self.spawn(f"api{index}", "serve-api", "--port", str(self.api_ports[index]))
        wait_http(f"http://127.0.0.1:{self.api_ports[index]}/health/ready")

    def start_dashboard(self) -> None:
        self.spawn("dashboard", "serve-dashboard", "--port", str(self.dashboard_port))
        wait_http(f"http://127.0.0.1:{self.dashboard_port}/dashboard/health/ready")

    def start_worker(self, index: int, env: dict[str, str] | None = None) -> subprocess.Popen:
        return self.spawn(f"worker{index}", "worker", env=env)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # not stopped within 30 s (stuck): killed, so nothing is left behind
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def start_nginx(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        tmp = self.dir / "nginx-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o777)  # nginx workers may run as another user
        template = string.Template((HERE / "nginx" / "pointsnet.conf.template").read_text())
        upstreams = "\n".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=1s;" for port in self.api_ports)
        dashboard = f"    server 127.0.0.1:{self.dashboard_port};"
        cert, key = self_signed_certificate(self.certificate.parent)
        (self.dir / "site.conf").write_text(template.safe_substitute(
            UPSTREAMS=upstreams, DASHBOARD_UPSTREAMS=dashboard, LISTEN=f"127.0.0.1:{self.http_listen}",
            TLS_LISTEN=f"127.0.0.1:{self.listen}", TLS_CERTIFICATE=str(cert), TLS_CERTIFICATE_KEY=str(key),
            ACCESS_LOG=str(self.dir / "nginx-access.log")))
        (self.dir / "nginx.conf").write_text(NGINX_MAIN.format(dir=self.dir))
        log = open(self.dir / "nginx.log", "ab")
        self.processes["nginx"] = subprocess.Popen([nginx, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_http(f"{self.url}/health/ready", verify=self.tls)

    def up(self) -> "Cluster":
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pointsnet("db", "upgrade")  # migrations are an explicit step
        self.pointsnet("keys", "init")  # one set of keys for every process on this data directory
        for index in range(len(self.api_ports)):
            self.start_api(index)
        self.start_dashboard()
        for index in range(self.workers):
            self.start_worker(index)
        self.start_nginx()
        return self

    def down(self) -> None:
        for name in list(self.processes):
            try:
                self.kill(name, signal.SIGTERM)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass

    def __enter__(self) -> "Cluster":
        try:
            return self.up()
        except BaseException:
            self.down()  # never leave processes behind when the cluster cannot come up
            raise

    def __exit__(self, *exc) -> None:
        self.down()


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (systemctl stop, docker stop, kill) stops the cluster as Ctrl-C does


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="PostgreSQL URL (postgresql+psycopg://...)")
    parser.add_argument("--dir", type=Path, required=True, help="Working directory: data, logs, nginx config")
    parser.add_argument("--listen", type=int, default=8080, help="nginx's HTTPS port on 127.0.0.1")
    parser.add_argument("--apis", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    cluster = Cluster(args.database_url, args.dir.resolve(), apis=args.apis, workers=args.workers, listen=args.listen)
    # Every process runs in its own session (a Ctrl-C in the terminal reaches this one only), so only
    # down() stops them: SIGTERM goes through it too, even while the cluster is still coming up.
    signal.signal(signal.SIGTERM, _stop)
    try:
        with cluster:
            print(f"Pointsnet cluster on {cluster.url} (certificate {cluster.certificate}): APIs on "
                  f"{cluster.api_ports}, {cluster.workers} workers; logs in {cluster.dir}. Ctrl-C or SIGTERM stops it.",
                  flush=True)
            signal.pause()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
