"""Commands that only read — `verify`, reports, the settlement and statement listings, member and alert
views — write nothing, not even the record of the time zone and cut-off the network's cycles are cut by
(network_settings, migration 0037): they check the process's values against the record where there is
one, and leave a missing record to the next writer. So they run on a read-only replica, the first time
after an upgrade too (docs/operations.md, "Time zone and cut-off")."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from shared.models import NetworkSetting
from tests.cli.inprocess import pointsnet
from tests.conftest import PG_URL
from tests.factories import make_member, make_partner

READ_ONLY = (("verify", "--json"), ("reports", "network", "--from", "2026-11-01", "--to", "2026-11-30",
                                    "--format", "json"),
             ("clearing", "list"), ("members", "status-counts"), ("alerts", "list"), ("partners", "list"),
             ("rules", "check"))


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
    assert rows(network) == {}
    for args in READ_ONLY:
        done = run(network, database_url, *args)
        assert done.returncode == 0, (args, done.stderr[-600:])
        assert rows(network) == {}, args
    assert run(network, database_url, "repair", "totals").returncode == 0  # a writer records it
    assert kept(network) == {"timezone": "Asia/Shanghai", "cycle_cutoff_minutes": "0"}


def test_read_only_commands_still_refuse_values_other_than_the_records(network, database_url):
    network.pin_cycle_settings()
    partner = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
    network.earn(partner, make_member(network, partner), "e1", points=500)
    for args in READ_ONLY:
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
def test_read_only_commands_run_on_a_read_only_replica_before_any_writer_started(network, database_url):
    """A replica is read-only: after upgrading to 0037 the first `pointsnet verify` there failed
    (`cannot execute INSERT in a read-only transaction`) until a writer had started on the primary."""
    partner = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
    network.earn(partner, make_member(network, partner), "e1", points=500)
    network.tx(lambda tx: tx.session.execute(NetworkSetting.__table__.delete()))  # as just after the upgrade
    replica = database_url + ("&" if "?" in database_url else "?") + "options=-c%20default_transaction_read_only%3Don"
    for args in READ_ONLY:
        done = run(network, replica, *args)
        assert done.returncode == 0, (args, done.stderr[-600:])
    verified = json.loads(run(network, replica, "verify", "--json").stdout)
    assert verified, verified
    refused = run(network, replica, "repair", "totals")  # a writer is refused there, as it should be
    assert refused.returncode != 0
    assert rows(network) == {}
