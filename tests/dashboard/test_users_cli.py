"""`pointsnet users …`: creating, listing, disabling dashboard users from the command line."""

from __future__ import annotations

import threading

import pytest
from typer.testing import CliRunner

from services import cli as cli_module
from services.cli import app
from shared.access import users
from shared.config import get_settings
from shared.db.database import Database
from tests.dashboard.conftest import PASSWORD, make_client, sign_in


@pytest.fixture
def cli(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("POINTSNET_DATABASE_URL", database_url)
    monkeypatch.setenv("POINTSNET_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(cli_module.console, "width", 200)  # tables unwrapped whatever the terminal
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
    both = cli("users", "add", "a@example.org", "--role", "root", "--password-stdin", stdin="short\n")
    assert both.exit_code != 0 and "unknown role 'root'" in str(both.exception or both.output)  # the role first
    assert network.tx(users.count_users, readonly=True) == 0


def test_users_add_refuses_a_language_the_dashboard_does_not_speak(cli, network):
    """The dashboard speaks en and zh (`--language` says "en or zh"); anything else is refused in one line
    before the password is asked for, and no user is stored."""
    for language in ("fr", "EN", "", "x" * 9):
        refused = cli("users", "add", "a@example.org", "--role", "operator", "--language", language,
                      "--password-stdin", stdin="short\n")
        assert refused.exit_code != 0, (language, refused.output)
        assert "unknown language" in str(refused.exception or refused.output), (language, refused.output)
    assert network.tx(users.count_users, readonly=True) == 0
    for language in ("en", "zh"):
        added = cli("users", "add", f"{language}@example.org", "--role", "operator", "--language", language,
                    "--password-stdin", stdin=PASSWORD + "\n")
        assert added.exit_code == 0, added.output
    assert sorted(u["language"] for u in network.tx(users.list_users, readonly=True)) == ["en", "zh"]


def test_add_user_refuses_a_language_the_dashboard_does_not_speak(network):
    from shared.access.errors import InvalidUser

    with pytest.raises(InvalidUser, match="unknown language 'fr'"):
        network.tx(lambda tx: users.add_user(tx, "a@example.org", "operator", users.new_password(PASSWORD),
                                             language="fr"))
    assert network.tx(users.count_users, readonly=True) == 0


def test_the_users_languages_are_the_dashboards():
    from services.dashboard.i18n import LANGUAGES

    assert set(users.LANGUAGES) == set(LANGUAGES)


def test_passwords_are_hashed_before_their_transaction(cli, network, monkeypatch):
    """Argon2 (about 0.1 s) runs with no unit of work open: inside a write unit it would hold SQLite's
    one write lock, which every partner request needs, that long."""
    units = threading.local()
    run_in_transaction = Database.run_in_transaction

    def counted(self, fn, **kwargs):
        units.open = getattr(units, "open", 0) + 1
        try:
            return run_in_transaction(self, fn, **kwargs)
        finally:
            units.open -= 1

    hasher, open_while_hashing = users._hasher, []

    class Recording:
        def hash(self, password):
            open_while_hashing.append(getattr(units, "open", 0))
            return hasher.hash(password)

        def __getattr__(self, name):
            return getattr(hasher, name)

    monkeypatch.setattr(Database, "run_in_transaction", counted)
    monkeypatch.setattr(users, "_hasher", Recording())
    added = cli("users", "add", "ops@example.org", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    changed = cli("users", "password", "ops@example.org", "--password-stdin", stdin="another long password\n")
    assert changed.exit_code == 0, changed.output
    assert open_while_hashing == [0, 0]
    assert sign_in(make_client(network), "ops@example.org", "another long password").status_code == 303
