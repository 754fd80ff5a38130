"""Commands that only read — `verify`, reports, the settlement and statement listings, member and alert
views — write nothing, not even the record of the time zone and cut-off the network's cycles are cut by
(network_settings, migration 0037): they check the process's values against the record where there is
one, and leave a missing record to the next writer. So they run on a read-only replica, the first time
after an upgrade too (docs/operations.md, "Time zone and cut-off")."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import create_engine, select, text

from shared.db.database import normalise_url
from shared.db.migrate import upgrade
from shared.models import NetworkSetting
from shared.partners.limits import record_topup
from shared.rules.store import set_rules
from shared.webhooks.endpoints import set_endpoint
from tests.cli.inprocess import pointsnet
from tests.conftest import PG_URL
from tests.db.migrating import downgrade
from tests.factories import make_member, make_partner

READ_ONLY = (("verify", "--json"), ("reports", "network", "--from", "2026-11-01", "--to", "2026-11-30",
                                    "--format", "json"),
             ("clearing", "list"), ("members", "status-counts"), ("alerts", "list"), ("partners", "list"),
             ("rules", "check"), ("clearing", "calendar", "list"), ("clearing", "exposure", "--json"),
             ("users", "list"), ("webhooks", "deliveries", "--json"))
TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
CYCLE = date(2026, 11, 20)


@pytest.fixture
def ledger(network, clock, tmp_path):
    """A settled cycle, a prepaid partner's float, a webhook endpoint and a member, made by writers (the
    network's keys too, as a writer's first start makes them); answers the read-only commands that read
    them, the check of a partner's log against the ledger (``reconcile``) among them."""
    network.signing_key, network.keyring  # noqa: B018  the keys a writer's first start made
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    prepaid = make_partner(network, "BookMart", billing="prepaid", point_value="1")
    network.tx(lambda tx: record_topup(tx, prepaid, 100_000, "BANK-1"))
    network.tx(lambda tx: set_endpoint(tx, coffee, "http://127.0.0.1:9/hooks"))
    network.tx(lambda tx: set_rules(tx, coffee, "activities:\n  survey: {points: 50}\n"))
    member = make_member(network, coffee)
    network.earn(coffee, member, "coffee-1", points=500)
    clock.advance(days=1)
    network.settle(CYCLE)
    directory = str(network.settings.data_dir / "settlements" / CYCLE.isoformat())
    log = tmp_path / "coffee-log.csv"
    log.write_text("reference,kind,points,amount,time\ncoffee-1,earn,500,-50,2026-11-20T02:00:00Z\n")
    return READ_ONLY + (
        ("reconcile", directory), ("reconcile", directory, "--partner", coffee, "--partner-log", str(log)),
        ("clearing", "float", prepaid), ("members", "show", member, "--json"), ("partners", "keys", "list", coffee),
        ("reports", "partner", coffee, "--from", "2026-11-01", "--to", "2026-11-30", "--format", "json"),
        ("rules", "show", "--partner", coffee), ("webhooks", "show", coffee))


def rows(network) -> dict[str, str]:
    return dict(network.tx(lambda tx: tx.session.execute(select(NetworkSetting.name, NetworkSetting.value)).all(),
                           readonly=True))


def kept(network) -> dict[str, str]:
    """The record of the cycles' time zone and cut-off."""
    return {name: value for name, value in rows(network).items() if name in ("timezone", "cycle_cutoff_minutes")}


def run(network, database_url, *args, **variables):
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url}
    return pointsnet(*args, env=env | {f"POINTSNET_{k.upper()}": v for k, v in variables.items()})


def test_read_only_commands_do_not_create_the_record(network, database_url):
    network.signing_key  # noqa: B018  the key a writer's first start made (a read-only command makes none)
    assert rows(network) == {}
    for args in READ_ONLY:
        done = run(network, database_url, *args)
        assert done.returncode == 0, (args, done.stderr[-600:])
        assert rows(network) == {}, args
    assert run(network, database_url, "repair", "totals").returncode == 0  # a writer records it
    assert kept(network) == {"timezone": "Asia/Shanghai", "cycle_cutoff_minutes": "0"}


def test_read_only_commands_on_a_ledger_do_not_create_the_record(network, database_url, ledger):
    network.tx(lambda tx: tx.session.execute(NetworkSetting.__table__.delete()))  # as just after the upgrade
    for args in ledger:
        done = run(network, database_url, *args)
        assert done.returncode == 0, (args, done.stderr[-600:])
        assert rows(network) == {}, args


def test_read_only_commands_still_refuse_values_other_than_the_records(network, database_url, ledger):
    network.pin_cycle_settings()
    for args in ledger:
        done = run(network, database_url, *args, timezone="UTC")
        assert done.returncode == 2 and "POINTSNET_TIMEZONE is 'UTC', but this network's cycles are cut by " \
            "'Asia/Shanghai'" in done.stderr, (args, done.returncode, done.stderr[-600:])
        assert run(network, database_url, *args).returncode == 0, args
    assert kept(network) == {"timezone": "Asia/Shanghai", "cycle_cutoff_minutes": "0"}


def test_before_the_first_entry_a_read_only_command_with_other_values_changes_nothing(network, database_url):
    network.pin_cycle_settings()
    assert run(network, database_url, "verify", "--json", timezone="UTC").returncode == 0
    assert kept(network) == {"timezone": "Asia/Shanghai", "cycle_cutoff_minutes": "0"}


@pytest.mark.skipif(not PG_URL, reason="a read-only PostgreSQL session (default_transaction_read_only)")
def test_read_only_commands_run_on_a_read_only_replica_before_any_writer_started(network, database_url, ledger):
    """A replica is read-only: after upgrading to 0037 the first `pointsnet verify` there failed
    (`cannot execute INSERT in a read-only transaction`) until a writer had started on the primary."""
    network.tx(lambda tx: tx.session.execute(NetworkSetting.__table__.delete()))  # as just after the upgrade
    replica = database_url + ("&" if "?" in database_url else "?") + "options=-c%20default_transaction_read_only%3Don"
    for args in ledger:
        done = run(network, replica, *args)
        assert done.returncode == 0, (args, done.stderr[-600:])
    verified = json.loads(run(network, replica, "verify", "--json").stdout)
    assert verified, verified
    refused = run(network, replica, "repair", "totals")  # a writer is refused there, as it should be
    assert refused.returncode != 0
    assert rows(network) == {}


def test_read_only_commands_refuse_a_schema_not_current_and_migrate_nothing(network, database_url):
    """A host given the new release before the database is upgraded (the previous release still serving
    it): a command that only reads says to run `pointsnet db upgrade` first (exit 1) and leaves the schema
    as it is. Until 2026-12-07 on SQLite it migrated the database under the running previous release. A
    writing command still migrates the embedded SQLite database (docs/operations.md)."""
    network.db.engine.dispose()
    downgrade(database_url, "0047")
    for args in (("verify", "--json"), ("webhooks", "deliveries", "--json"), ("clearing", "list")):
        done = run(network, database_url, *args)
        assert done.returncode == 1 and "run `pointsnet db upgrade` first" in done.stderr, (
            args, done.returncode, done.stderr[-600:])
        assert revision(database_url) == "0047", args
    writes = run(network, database_url, "repair", "totals")
    if database_url.startswith("sqlite"):
        assert writes.returncode == 0, writes.stderr[-600:]
        assert revision(database_url) != "0047"
    else:
        assert writes.returncode == 1 and "run `pointsnet db upgrade` first" in writes.stderr
        upgrade(database_url)


def revision(database_url: str) -> str:
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()
