"""Text the network stores from partners, webhook receivers and operators (a partner's name, an alert's
detail, a receiver's answer, an e-mail address) is printed as it is, never read as Rich markup: ``[/]``
does not fail the command and ``[b]AirLink`` is not shown as ``AirLink``. And standard output's one-line
messages are not cut at 80 columns when it is not a terminal."""

from __future__ import annotations

import io
from unittest import mock

import pytest
from sqlalchemy import update

from shared.access import users
from shared.alerts import raise_alert
from shared.models import WebhookDelivery
from shared.webhooks.endpoints import set_endpoint
from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.factories import make_member, make_partner

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
ODD = "[b]x [/] y[/]"  # a closing tag with none open (Rich fails on it) and an opening one (Rich hides it)


@pytest.fixture
def stored(network, clock, database_url):
    plain = make_partner(network, "AirLink", **TERMS)
    odd = make_partner(network, "[b]AirLink", **TERMS)
    named = make_partner(network, f"Shop {ODD}", **TERMS)
    network.tx(lambda tx: set_endpoint(tx, named, "http://127.0.0.1:9/hooks"))
    member = make_member(network, named)
    network.earn(named, member, "e1", points=50)
    network.tx(lambda tx: raise_alert(tx, "float_exhausted", partner_id=named, reference="[/ref]",
                                      note=ODD))
    network.tx(lambda tx: tx.session.execute(update(WebhookDelivery).values(
        last_status_code=500, last_error=f"[/] upstream failed {ODD}"[:60])))
    network.tx(lambda tx: users.add_user(tx, f"a{ODD.replace(' ', '')}@example.org", "operator",
                                         users.new_password("a long enough password")))
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z"), "COLUMNS": None,
           "POINTSNET_WEBHOOK_ALLOW_PRIVATE_TARGETS": "1"}
    return {"plain": plain, "odd": odd, "named": named, "env": env}


def ok(env, *args):
    done = run_pointsnet(*args, env=env)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    return done.stdout


def test_partners_list_shows_names_as_stored(stored):
    out = ok(stored["env"], "partners", "list")
    assert "[b]AirLink" in out and f"Shop {ODD}" in out, out
    names = {line.split("│")[2].strip() for line in out.splitlines()
             if stored["plain"] in line or stored["odd"] in line}
    assert names == {"AirLink", "[b]AirLink"}, out  # two partners, two names


def test_clearing_exposure_shows_names_as_stored(stored):
    out = ok(stored["env"], "clearing", "exposure")
    assert "[b]AirLink" in out and f"Shop {ODD}" in out, out


def test_calendar_list_shows_names_as_stored(stored):
    ok(stored["env"], "clearing", "calendar", "add", "2026-12-25", f"Christmas [observed] {ODD}")
    out = ok(stored["env"], "clearing", "calendar", "list")
    assert f"Christmas [observed] {ODD}" in out, out


def test_alerts_list_shows_a_partners_reference_as_stored(stored):
    out = ok(stored["env"], "alerts", "list")
    assert '"reference": "[/ref]"' in out and ODD in out, out


def test_webhooks_deliveries_shows_the_receivers_answer_as_stored(stored):
    out = ok(stored["env"], "webhooks", "deliveries")
    assert f"[/] upstream failed {ODD}" in out, out


def test_users_commands_show_an_email_as_stored(stored):
    email = "x[/]y[b]@example.org"
    with mock.patch("services.cli.users._password", lambda stdin: "a long enough password"):
        assert ok(stored["env"], "users", "add", email, "--role", "finance").strip() == \
            f"added {email} (finance)"
        assert f"password set for {email}" in ok(stored["env"], "users", "password", email)
    assert f"ended 0 session(s) of {email}" in ok(stored["env"], "users", "sign-out", email)
    assert f"disabled {email}" in ok(stored["env"], "users", "disable", email)
    out = ok(stored["env"], "users", "list")
    assert email in out and f"a{ODD.replace(' ', '')}@example.org" in out, out


def test_a_long_message_on_a_pipe_stays_one_line():
    """Standard output not a terminal: a message is one line whatever its length (a script reads it
    whole); tables keep their layout."""
    from services import cli

    message = "reconciled: cycle 2026-11-20: signature, digests, control totals and recomputation match " + "d" * 90
    piped = io.StringIO()
    with mock.patch.object(cli.console, "_file", piped), mock.patch.object(cli.console, "_width", 80):
        assert not cli.console.is_terminal
        cli.console.print(message)
    assert piped.getvalue() == message + "\n"


def test_a_long_value_in_a_piped_table_is_whole(stored, network):
    long_name = "A partner with a name much longer than any eighty-column terminal shows in one cell " * 2
    make_partner(network, long_name.strip(), **TERMS)
    out = ok(stored["env"], "partners", "list")
    assert long_name.strip() in out and "…" not in out, out


def test_the_demo_seeds_progress_shows_no_total_before_it_is_known(network, monkeypatch):
    """Interrupted before the seed has said how many days it makes: ``day 0``, not ``day 0/None``."""
    import typer

    import services.demo
    from services import cli
    from services.cli import serving

    def seed(network, progress):
        raise KeyboardInterrupt

    monkeypatch.setattr(services.demo, "demo_state", lambda network: "empty")
    monkeypatch.setattr(services.demo, "seed", seed)
    piped = io.StringIO()
    with mock.patch.object(cli.console, "_file", piped), mock.patch.object(cli.err, "_file", io.StringIO()), \
            pytest.raises(typer.Exit):
        serving._seed_demo(network, network.settings)
    assert "day 0" in piped.getvalue() and "None" not in piped.getvalue(), piped.getvalue()
