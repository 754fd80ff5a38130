"""`pointsnet users …`: creating, listing, disabling dashboard users from the command line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.access import users
from shared.config import get_settings
from tests.dashboard.conftest import PASSWORD, make_client, sign_in


@pytest.fixture
def cli(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("POINTSNET_DATABASE_URL", database_url)
    monkeypatch.setenv("POINTSNET_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args, stdin=None: runner.invoke(app, list(args), input=stdin)
    get_settings.cache_clear()


def test_users_add_list_disable(cli, network, partners):
    added = cli("users", "add", "Ops@Example.org", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert "added ops@example.org (operator)" in added.output
    viewer = cli("users", "add", "v@example.org", "--role", "partner_viewer", "--partner", partners["CoffeeCo"],
                 "--password-stdin", stdin=PASSWORD + "\n")
    assert viewer.exit_code == 0, viewer.output
    listed = cli("users", "list")
    assert "ops@example.org" in listed.output and partners["CoffeeCo"] in listed.output

    client = make_client(network)
    assert sign_in(client, "ops@example.org").status_code == 303
    assert cli("users", "disable", "ops@example.org").exit_code == 0
    assert client.get("/dashboard/").status_code == 303  # the running session ended too
    assert sign_in(make_client(network), "ops@example.org").status_code == 401


def test_users_add_refuses_bad_input_with_one_line(cli, network):
    short = cli("users", "add", "a@example.org", "--role", "operator", "--password-stdin", stdin="short\n")
    assert short.exit_code != 0 and "at least 12 characters" in str(short.exception or short.output)
    role = cli("users", "add", "a@example.org", "--role", "root", "--password-stdin", stdin=PASSWORD + "\n")
    assert role.exit_code != 0
    assert network.tx(users.count_users, readonly=True) == 0
