"""Dashboard fixtures: the dashboard mounted at /dashboard like `pointsnet serve` does, users of
every role, and a signed-in HTTP client per role."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.dashboard.app import create_dashboard
from shared.access import users
from shared.config import Settings

PASSWORD = "correct horse battery staple"
BASE = "/dashboard"


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch):
    """Argon2id with the cheapest parameters in these tests (the real ones cost ~60 ms per hash,
    which is their point); test_production_hashing_parameters checks the real ones."""
    from argon2 import PasswordHasher, profiles

    monkeypatch.setattr(users, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def settings(tmp_path) -> Settings:
    # TestClient talks plain http: cookies without the Secure flag, as `serve --demo` does
    return Settings(data_dir=Path(tmp_path) / "data", webhook_allow_private_targets=True,
                    dashboard_secure_cookies=False)


@pytest.fixture
def partners(network) -> dict[str, str]:
    return {name: network.create_partner(name)["partner_id"] for name in ("CoffeeCo", "BookMart")}


@pytest.fixture
def staff(network, partners) -> dict[str, str]:
    """One user per role (plus a second operator for maker-checker); e-mail by name."""
    people = {"operator": ("op@example.org", "operator", None), "checker": ("checker@example.org", "operator", None),
              "finance": ("fin@example.org", "finance", None),
              "viewer": ("viewer@example.org", "partner_viewer", partners["CoffeeCo"])}
    password = users.new_password(PASSWORD)
    for email, role, partner in people.values():
        network.tx(lambda tx, e=email, r=role, p=partner: users.add_user(tx, e, r, password, partner_id=p))
    return {name: email for name, (email, _r, _p) in people.items()}


def make_client(network, base_url: str = "http://testserver") -> TestClient:
    root = FastAPI()
    root.mount(BASE, create_dashboard(network))
    return TestClient(root, base_url=base_url, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD):
    form = client.get(f"{BASE}/login")
    assert form.status_code == 200
    return client.post(f"{BASE}/login", data={"email": email, "password": password, "csrf_token": csrf_of(form.text)},
                       headers={"origin": str(client.base_url).rstrip("/")})


@pytest.fixture
def client_as(network, staff):
    """client_as("operator") -> a TestClient signed in as that person."""
    made = []

    def make(who: str) -> TestClient:
        client = make_client(network)
        made.append(client)
        answer = sign_in(client, staff[who])
        assert answer.status_code == 303, answer.text
        return client

    yield make
    for client in made:
        client.close()


def post_form(client: TestClient, path: str, data: dict | None = None, *, page: str | None = None):
    """Submit a form the way the browser does: with the CSRF token of a page of this session."""
    html = client.get(page or f"{BASE}/").text
    return client.post(path, data={"csrf_token": csrf_of(html)} | (data or {}), headers={"origin": "http://testserver"})


# -- the real thing in a real browser -------------------------------------------------------------
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


@pytest.fixture
def live_dashboard(network, staff):
    """The partner API with the dashboard mounted at /dashboard, as `pointsnet serve` runs them,
    on a free port; yields the dashboard's base URL."""
    from services.partner_api.app import create_app
    from tests.api.conftest import Server

    app = create_app(network)
    app.mount(BASE, create_dashboard(network))
    with Server(app) as url:
        yield url + BASE


@pytest.fixture
def page_as(browser, live_dashboard, staff):
    """page_as("finance") -> a Playwright page signed in as that person (own browser context)."""
    contexts = []

    def make(who: str, *, lang: str | None = None):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_dashboard}/login")
        page.fill("input[name=email]", staff[who])
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("form[action$='/login'] button[type=submit]")
        assert "/login" not in page.url, f"{who} could not sign in"
        return page

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact (test-artifacts/dashboard/NAME.png)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
