"""deploy/compose.yaml and its nginx site (no container engine runs here: the files are read, and
the dashboard is run the way its container runs it — behind uvicorn's proxy-headers middleware
with the compose file's FORWARDED_ALLOW_IPS, reached from nginx's address)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.dashboard.app import create_dashboard
from tests.dashboard.conftest import BASE, partners, quick_password_hashing, settings, sign_in, staff  # noqa: F401

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NGINX_ADDRESS = ("172.18.0.9", 41000)  # the nginx container, as the dashboard container sees it


def dashboard_location() -> str:
    conf = (DEPLOY / "nginx" / "compose.conf").read_text()
    return re.search(r"location /dashboard/ \{(.*?)\}", conf, re.S).group(1)


def dashboard_service() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["dashboard"]


def test_nginx_passes_the_browsers_address_to_the_dashboard():
    block = dashboard_location()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in block  # set, not appended to what was sent
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in block


def test_the_dashboard_trusts_nginx_and_only_the_project_network_reaches_it():
    service = dashboard_service()
    assert service["environment"].get("FORWARDED_ALLOW_IPS")
    assert "POINTSNET_DATABASE_URL" in service["environment"]  # the shared environment is kept
    assert "ports" not in service  # trusting every peer is safe only while nothing else can connect


def behind_compose_nginx(network, browser_address: str) -> TestClient:
    root = FastAPI()
    root.mount(BASE, create_dashboard(network))
    trusted = dashboard_service()["environment"]["FORWARDED_ALLOW_IPS"]
    return TestClient(ProxyHeadersMiddleware(root, trusted_hosts=trusted), follow_redirects=False,
                      client=NGINX_ADDRESS, headers={"x-forwarded-for": browser_address})


def test_one_browsers_failed_sign_ins_do_not_lock_out_another_behind_the_proxy(network, staff):  # noqa: F811
    """docs/dashboard.md: twenty failed sign-ins from one client address refuse further attempts —
    from that address, not from every browser behind nginx."""
    with behind_compose_nginx(network, "203.0.113.5") as attacker:
        for n in range(20):
            assert sign_in(attacker, f"nobody{n}@example.org", "wrong password!").status_code == 401
        assert sign_in(attacker, staff["operator"]).status_code == 429
    with behind_compose_nginx(network, "198.51.100.7") as operator:
        assert sign_in(operator, staff["operator"]).status_code == 303


def test_nginx_publishes_https_with_the_certificate_of_tls():
    """The dashboard's session cookie is Secure and partners send personal data: nginx publishes 443
    with the certificate and key of ./tls, and 80 only redirects (tests/deploy/test_nginx_logs.py runs it)."""
    nginx = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["nginx"]
    assert "443:443" in nginx["ports"]
    assert "./tls:/etc/nginx/tls:ro" in nginx["volumes"]
    conf = (DEPLOY / "nginx" / "compose.conf").read_text()
    assert "listen 443 ssl;" in conf and "ssl_certificate /etc/nginx/tls/fullchain.pem;" in conf
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf


def test_the_public_authority_must_be_given_not_a_placeholder():
    """compose fell back to points.example.com: an operator who did not set it got every request partners
    sign for the real host refused (401 signature_invalid) and checkpoints signed under another origin."""
    environment = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["x-pointsnet"]["environment"]
    assert re.fullmatch(r"\$\{POINTSNET_PUBLIC_AUTHORITY:\?[^}]+\}", environment["POINTSNET_PUBLIC_AUTHORITY"])
