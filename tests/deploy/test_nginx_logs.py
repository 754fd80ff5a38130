"""nginx in deploy/ logs requests without their query string or Referer (docs/security.md: nothing
personal is logged), a second line of defence now that the dashboard's member search is a POST: a
query string (a page filter, an old bookmark such as ``/dashboard/members?q=+8613912345678``) or a
Referer stays out of the log all the same. Every access_log names a log_format that
uses none of $request, $request_uri, $args, $arg_*, $query_string or $http_referer; the sites pass
``nginx -t``; and a real nginx with the VM site logs the path of a search, not what was searched."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import string
import ssl
import subprocess
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SITES = sorted((DEPLOY / "nginx").iterdir())
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
FORBIDDEN = {"request", "request_uri", "args", "query_string", "http_referer", "request_body"}
PHONE = "8613912345678"
_spec = importlib.util.spec_from_file_location("cluster", DEPLOY / "cluster.py")
cluster_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cluster_module)


def _directives(text: str, name: str) -> list[str]:
    """The arguments of every ``name`` directive (up to its ';'), comments removed."""
    text = re.sub(r"#[^\n]*", "", text)
    return [m.group(1) for m in re.finditer(rf"(?:^|[;{{}}\s]){name}\s+([^;]*);", text)]


def _variables(fmt: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in re.finditer(r"\$\{(\w+)\}|\$(\w+)", fmt)}


def _check_logging(text: str, where: str) -> None:
    formats = {}
    for args in _directives(text, "log_format"):
        name, _, body = args.strip().partition(" ")
        formats[name] = body
    logs = _directives(text, "access_log")
    assert logs, f"{where}: no access_log, so nginx writes its default 'combined' format (the whole request line)"
    for args in logs:
        words = args.split()
        if words == ["off"]:
            continue
        assert len(words) >= 2, f"{where}: access_log {args!r} uses the default 'combined' format"
        assert words[1] in formats, f"{where}: access_log {args!r} uses a format not defined here"
        bad = {v for v in _variables(formats[words[1]]) if v in FORBIDDEN or v.startswith("arg_")}
        assert not bad, f"{where}: log_format {words[1]} records {sorted(bad)}"


@pytest.mark.parametrize("site", SITES, ids=lambda p: p.name)
def test_every_access_log_uses_a_format_without_query_string_or_referer(site):
    _check_logging(site.read_text(), str(site.relative_to(DEPLOY)))


@pytest.mark.parametrize("site", SITES, ids=lambda p: p.name)
def test_a_request_a_replica_got_is_never_sent_to_another(site):
    """With ``proxy_next_upstream … timeout http_502 http_503`` nginx sent a signed request a replica had
    answered 503 (statement_unavailable) to the other replica, where its nonce was spent: the partner got
    401 nonce_reused, which its SDK does not retry, instead of the 503 it does. A replica that cannot be
    reached (refused, or no connection within proxy_connect_timeout) is still skipped."""
    directives = _directives(site.read_text(), "proxy_next_upstream")
    assert directives, f"{site.name}: no proxy_next_upstream"
    assert all(args.split() == ["error", "timeout"] for args in directives), (site.name, directives)


def test_the_check_catches_what_nginx_logs_by_default():
    for text in ("server { listen 80; }",
                 "server { access_log /var/log/nginx/access.log; }",
                 "log_format full '$remote_addr \"$request\"'; server { access_log /x.log full; }",
                 "log_format uri '$remote_addr $request_uri'; server { access_log /x.log uri; }",
                 "log_format a '$uri?$args'; server { access_log /x.log a; }",
                 "log_format a '$uri ${query_string}'; server { access_log /x.log a; }",
                 "log_format a '$uri $arg_q'; server { access_log /x.log a; }",
                 "log_format a '$uri \"$http_referer\"'; server { access_log /x.log a; }"):
        with pytest.raises(AssertionError):
            _check_logging(text, "example")
    _check_logging("log_format a '$request_method $uri $request_id'; server { access_log /x.log a; }", "example")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MAIN = """daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;  # as Debian's and the nginx image's main configuration: 'combined'
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    include {dir}/site.conf;
}}
"""


def _site(name: str, tmp_path: Path, listen: int, tls: int, closed: int) -> str:
    """The site as deployed, its upstreams pointed at a closed local port, its plain-HTTP and HTTPS ports
    on 127.0.0.1, a throwaway certificate (tmp_path/tls) and its log in tmp_path."""
    text = (DEPLOY / "nginx" / name).read_text()
    cert, key = cluster_module.self_signed_certificate(tmp_path / "tls")
    if name.endswith(".template"):
        return string.Template(text).safe_substitute(
            UPSTREAMS=f"    server 127.0.0.1:{closed};", DASHBOARD_UPSTREAMS=f"    server 127.0.0.1:{closed};",
            LISTEN=f"127.0.0.1:{listen}", TLS_LISTEN=f"127.0.0.1:{tls}", TLS_CERTIFICATE=str(cert),
            TLS_CERTIFICATE_KEY=str(key), ACCESS_LOG=str(tmp_path / "access.log"))
    text = re.sub(r"server (api1|api2|dashboard):\d+", f"server 127.0.0.1:{closed}", text)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{listen};").replace("listen 443 ssl;",
                                                                          f"listen 127.0.0.1:{tls} ssl;")
    text = text.replace("/etc/nginx/tls/fullchain.pem", str(cert)).replace("/etc/nginx/tls/privkey.pem", str(key))
    return text.replace("/var/log/nginx/access.log", str(tmp_path / "access.log"))


def _configure(tmp_path: Path, name: str) -> tuple[Path, int, int]:
    """nginx.conf for the site, its plain-HTTP port and its HTTPS port."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    os.chmod(tmp_path / "tmp", 0o777)
    listen, tls = _free_port(), _free_port()
    (tmp_path / "site.conf").write_text(_site(name, tmp_path, listen, tls, _free_port()))
    (tmp_path / "nginx.conf").write_text(MAIN.format(dir=tmp_path))
    return tmp_path / "nginx.conf", listen, tls


def _client(tmp_path: Path) -> httpx.Client:
    """A client that trusts the site's throwaway certificate."""
    return httpx.Client(verify=ssl.create_default_context(cafile=str(tmp_path / "tls" / "cert.pem")), timeout=5)


@contextmanager
def _running(nginx: str, conf: Path):
    process = subprocess.Popen([nginx, "-p", str(conf.parent), "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _first_answer(send, deadline: float) -> httpx.Response:
    while True:
        try:
            return send()
        except httpx.TransportError:
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)


@pytest.fixture
def nginx():
    if NGINX is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing (.ci/run installs it)")
        pytest.skip("nginx is not installed")
    return NGINX


@pytest.mark.parametrize("name", ["compose.conf", "pointsnet.conf.template"])
def test_the_sites_pass_nginx_t(nginx, tmp_path, name):
    conf, _, _ = _configure(tmp_path, name)
    checked = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("name", ["compose.conf", "pointsnet.conf.template"])
def test_a_member_search_is_logged_by_path_only(nginx, tmp_path, name):
    conf, _, tls = _configure(tmp_path, name)
    with _running(nginx, conf), _client(tmp_path) as client:
        deadline = time.monotonic() + 30
        answer = _first_answer(lambda: client.get(
            f"https://127.0.0.1:{tls}/dashboard/members", params={"q": f"+{PHONE}"},
            headers={"referer": f"https://127.0.0.1:{tls}/dashboard/members?q=a%40b.example",
                     "user-agent": "log-check"}), deadline)
        assert answer.status_code == 502  # no dashboard behind it: nginx answers, and logs the request
        log = tmp_path / "access.log"
        while not (log.exists() and "log-check" in log.read_text()):
            assert time.monotonic() < deadline, "nothing logged"
            time.sleep(0.1)
    line = log.read_text()
    assert "GET /dashboard/members HTTP/1.1" in line and " 502 " in line, line
    assert PHONE not in line and "a%40b" not in line and "a@b" not in line and "?" not in line, line


@pytest.mark.parametrize("name", ["compose.conf", "pointsnet.conf.template"])
def test_the_sites_serve_https_only_and_never_metrics(nginx, tmp_path, name):
    """Partners and browsers over TLS 1.2 or 1.3 only; plain HTTP only redirects to HTTPS (the dashboard's
    session cookie is Secure: over http a browser drops it), and /metrics is refused on both."""
    conf, listen, tls = _configure(tmp_path, name)
    with _running(nginx, conf), _client(tmp_path) as client:
        deadline = time.monotonic() + 30
        plain = _first_answer(lambda: httpx.get(f"http://127.0.0.1:{listen}/dashboard/login?next=x", timeout=5),
                              deadline)
        assert plain.status_code == 301 and plain.headers["location"] == "https://127.0.0.1/dashboard/login?next=x"
        assert httpx.post(f"http://127.0.0.1:{listen}/v1/earn", timeout=5).status_code == 301  # nothing proxied
        assert httpx.get(f"http://127.0.0.1:{listen}/metrics", timeout=5).status_code == 403
        secure = _first_answer(lambda: client.get(f"https://127.0.0.1:{tls}/dashboard/login"), deadline)
        assert secure.status_code == 502  # proxied (no dashboard behind it here)
        assert secure.headers["strict-transport-security"].startswith("max-age=")
        assert client.get(f"https://127.0.0.1:{tls}/metrics").status_code == 403
        old = ssl.create_default_context(cafile=str(tmp_path / "tls" / "cert.pem"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is: that is the point
            old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            old.set_ciphers("ALL:@SECLEVEL=0")  # let the client offer TLS 1.1: the server must refuse it
        except ssl.SSLError:
            pass
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://127.0.0.1:{tls}/dashboard/login", verify=old, timeout=5)


def test_the_vm_walkthrough_fills_in_every_variable_of_the_template():
    """docs/operations.md step 6 names the template's variables to envsubst (a bare envsubst blanks
    nginx's own): one left out stays ``${...}`` in the site, and nginx refuses it."""
    template = (DEPLOY / "nginx" / "pointsnet.conf.template").read_text()
    variables = set(re.findall(r"\$\{(\w+)\}", template))
    assert {"LISTEN", "TLS_LISTEN", "TLS_CERTIFICATE", "TLS_CERTIFICATE_KEY"} <= variables
    guide = (DEPLOY.parent / "docs" / "operations.md").read_text()
    step = guide[guide.index("6. **The nginx site**"):]
    named = re.search(r"envsubst '([^']*)'", step).group(1)
    assert set(re.findall(r"\$\{(\w+)\}", named)) == variables
    exported = step[step.index("export UPSTREAMS"):step.index("envsubst '")]
    assert all(f"{name}=" in exported for name in variables), exported
