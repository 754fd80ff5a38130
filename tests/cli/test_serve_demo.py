"""``pointsnet serve --demo`` when a newcomer's first hour goes wrong: a seed interrupted by Ctrl-C, demo
traffic with the server gone, a port already taken, an IPv6 or empty --host, and the demo partner's key
ready for ``pointsnet partner-call`` (the demo coming up whole: tests/cli/test_commands.py)."""

from __future__ import annotations

import json
import logging
import socket
import stat
import time
from datetime import datetime, timedelta, timezone

import pytest
import typer

from services import demo
from services.cli import serving
from shared.ports import free_port
from tests.cli.inprocess import pointsnet


def _env(tmp_path, database_url):
    return {"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": database_url}


def _small_seed(network):
    return demo.seed(network, members=30, days=1)


def test_a_seed_interrupted_after_the_partners_is_named_and_never_served(network, database_url, tmp_path,
                                                                          monkeypatch):
    def interrupted(*args, **kwargs):  # Ctrl-C once the partners and their keys exist
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "set_rules", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _small_seed(network)
    monkeypatch.undo()
    assert demo.demo_state(network) == "interrupted"
    network.close()
    started = pointsnet("serve", "--demo", "--port", str(free_port()), env=_env(tmp_path, database_url))
    assert started.returncode == 2, started.stdout + started.stderr
    assert started.stderr.strip().count("\n") == 0
    assert "a previous demo seed was interrupted: remove the data directory" in started.stderr
    assert str(tmp_path / "data") in started.stderr.replace("\n", "")
    assert "already seeded" not in started.stdout and "password" not in started.stdout


def test_ctrl_c_during_the_seed_says_how_to_seed_again_in_one_line(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "set_rules", interrupted)
    env = _env(tmp_path, None)  # the embedded database, in the data directory
    stopped = pointsnet("serve", "--demo", "--port", str(free_port()), env=env)
    assert stopped.returncode == 130 and stopped.stderr.strip().count("\n") == 0, stopped.stderr
    assert stopped.stderr.strip() == (f"error: the demo seed was interrupted: remove the data directory "
                                      f"{tmp_path / 'data'} to seed it again")
    monkeypatch.undo()
    again = pointsnet("serve", "--demo", "--port", str(free_port()), env=env)
    assert again.returncode == 2 and again.stderr.strip() == (
        f"error: a previous demo seed was interrupted: remove the data directory {tmp_path / 'data'} to seed it again")


def test_a_seed_run_to_its_end_is_recorded_as_seeded(network):
    assert demo.demo_state(network) == "absent"
    counts = _small_seed(network)
    assert counts["partners"] == len(demo.PARTNERS)
    assert demo.demo_state(network) == "seeded"


def test_a_demo_seeded_and_served_before_the_seed_recorded_its_end_is_seeded(network, clock):
    """A release before the completion row: its demo, served since (the job settled a cycle), still serves
    after an upgrade; the seed itself settles nothing."""
    from sqlalchemy import delete

    from shared.models import NetworkSetting

    _small_seed(network)
    network.tx(lambda tx: tx.session.execute(delete(NetworkSetting).where(NetworkSetting.name == demo.SEEDED)))
    assert demo.demo_state(network) == "interrupted"  # nothing settled yet: not served
    clock.set(datetime.now(timezone.utc) + timedelta(days=2))  # the seed posts up to the real now
    assert network.settle_due()
    assert demo.demo_state(network) == "seeded"


def test_each_demo_partner_has_an_owner_only_pem_and_one_ready_partner_call_line(network):
    _small_seed(network)
    keys = json.loads((network.settings.data_dir / "keys" / "demo-partners.json").read_text())
    for partner_id, entry in keys.items():
        pem = demo.partner_key_file(network, entry["name"])
        assert pem.parent == network.settings.data_dir / "keys"
        assert pem.read_text() == entry["private_key"]
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    line = demo.partner_call_line(network, "http://127.0.0.1:8400")
    assert line.count("\n") == 0
    coffee = next((pid, entry) for pid, entry in keys.items() if entry["name"] == "CoffeeCo")
    assert line == (f"pointsnet partner-call GET /v1/transactions --key-file {demo.partner_key_file(network, 'CoffeeCo')} "
                    f"--key-id {coffee[1]['key_id']} --url http://127.0.0.1:8400")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_demo_traffic_to_a_closed_port_is_quiet_and_quick(network, host, caplog):
    _small_seed(network)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as closed:
        closed.bind((host, 0))
        port = closed.getsockname()[1]  # bound, never listening: a connection is refused
        traffic = demo.LiveTraffic(network, serving._base_url(host, port))
        caplog.set_level(logging.DEBUG)
        started = time.monotonic()
        assert traffic() == 0  # no exception escapes
        assert time.monotonic() - started < 1.5  # no retries against a port that is gone
    assert not [record for record in caplog.records if record.exc_info or record.levelno >= logging.WARNING]


@pytest.mark.parametrize("host, url", [("127.0.0.1", "http://127.0.0.1:8483"), ("0.0.0.0", "http://127.0.0.1:8483"),
                                       ("::1", "http://[::1]:8483"), ("::", "http://[::1]:8483"),
                                       ("fe80::1", "http://[fe80::1]:8483"), ("example.org", "http://example.org:8483")])
def test_urls_bracket_ipv6_literals(host, url):
    assert serving._base_url(host, 8483) == url


def test_an_empty_host_is_refused_in_one_line():
    with pytest.raises(typer.Exit) as refused:
        serving._bound("", free_port())
    assert refused.value.exit_code == 2


@pytest.mark.parametrize("command", ["serve", "serve-api", "serve-dashboard"])
def test_every_server_refuses_an_empty_host(tmp_path, command):
    assert pointsnet("db", "upgrade", env=_env(tmp_path, None)).returncode == 0
    refused = pointsnet(command, "--host", "", "--port", str(free_port()), env=_env(tmp_path, None))
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "--host" in refused.stderr and "0.0.0.0" in refused.stderr


def test_a_taken_port_stops_serve_demo_before_the_seed(tmp_path, database_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = pointsnet("serve", "--demo", "--port", str(port), env=_env(tmp_path, database_url))
    assert refused.returncode != 0 and "cannot serve on 127.0.0.1 port" in refused.stderr
    assert "password" not in refused.stdout and "seeding" not in refused.stdout
    # nothing was seeded (the database's own record, not how long the refusal took)
    from shared.config import Settings
    from shared.network import Network

    network = Network(Settings(data_dir=tmp_path / "data"), database_url=database_url)
    try:
        assert demo.demo_state(network) == "absent"
    finally:
        network.close()


@pytest.mark.parametrize("names", [["CoffeeCo"], ["My Shop"], ["CoffeeCo", "My Shop"]])
def test_a_network_that_is_not_the_demos_is_refused_and_given_no_demo_logins(network, database_url, tmp_path,
                                                                             clock, names):
    """An operator's network, its partners named as the docs' examples name them: ``serve --demo`` on it
    is refused in one line and adds no dashboard user (until 2026-12-07 a partner called CoffeeCo and a
    settled cycle made it "already seeded": it got three demo logins, two of them operators, their
    passwords printed, and the demo's traffic)."""
    from sqlalchemy import func, select

    from shared.models import StaffUser
    from tests.factories import make_member, make_partner

    partners = [make_partner(network, name) for name in names]
    network.earn(partners[0], make_member(network, partners[0]), "e1", points=10)
    clock.advance(days=1)
    network.settle(clock.now().date() - timedelta(days=1))
    network.close()
    refused = pointsnet("serve", "--demo", "--port", str(free_port()), env=_env(tmp_path, database_url))
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0, refused.stdout + refused.stderr
    assert "not the demo's: serve it without --demo" in refused.stderr
    assert "password" not in refused.stdout and "seeding" not in refused.stdout
    assert network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(StaffUser)).scalar_one(),
                      readonly=True) == 0
