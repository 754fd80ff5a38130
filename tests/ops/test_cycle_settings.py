"""A network's cycles are cut by one time zone and cut-off for its whole life (docs/operations.md,
"Time zone and cut-off"): the first process to start records POINTSNET_TIMEZONE and
POINTSNET_CYCLE_CUTOFF_MINUTES, and once the ledger has an entry every process started with others —
a command, `serve`, `serve-api`, `serve-dashboard`, `worker` — is refused in one line with exit 2,
changing nothing. Another zone would move the boundaries of cycles already posted into, closed,
settled and signed: an earn could fall into a closed cycle, a day be settled twice or not at all.
Before the first entry the record follows the latest start, and the first entry's writer records its
own values with it: the record is always the cut of the ledger's entries."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared.ledger.cycles import CycleSettingsChanged
from shared.models import Entry, NetworkSetting
from tests.cli.inprocess import environment, pointsnet
from tests.factories import make_member, make_partner


def kept(network) -> dict[str, str]:
    """The record of the cycles' time zone and cut-off (network_settings holds other settings too)."""
    return dict(network.tx(lambda tx: tx.session.execute(select(NetworkSetting.name, NetworkSetting.value).where(
        NetworkSetting.name.in_(["timezone", "cycle_cutoff_minutes"]))).all(), readonly=True))


def command(network, database_url, *args, **variables):
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url}
    return pointsnet(*args, env=env | {f"POINTSNET_{k.upper()}": v for k, v in variables.items()})


def refused(done, says: str) -> None:
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("configuration error: ") and says in done.stderr, done.stderr


@pytest.fixture
def posted(network):
    """A network (Asia/Shanghai, cut-off at midnight) whose first start was recorded, with an entry."""
    network.pin_cycle_settings()
    partner = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
    network.earn(partner, make_member(network, partner), "e1", points=500)
    return network


def test_the_first_start_records_the_zone_and_cut_off(network, database_url):
    assert kept(network) == {}
    assert command(network, database_url, "clearing", "list").returncode == 0  # only reads: records nothing
    assert kept(network) == {}
    assert command(network, database_url, "repair", "totals").returncode == 0  # a command that may write
    assert kept(network) == {"timezone": "Asia/Shanghai", "cycle_cutoff_minutes": "0"}
    currency = network.tx(lambda tx: tx.session.execute(select(NetworkSetting.value).where(
        NetworkSetting.name == "currency")).scalar_one(), readonly=True)
    assert currency == "CNY"


@pytest.mark.parametrize("variables, says", [
    ({"timezone": "UTC"}, "POINTSNET_TIMEZONE is 'UTC', but this network's cycles are cut by 'Asia/Shanghai'"),
    ({"cycle_cutoff_minutes": "120"}, "POINTSNET_CYCLE_CUTOFF_MINUTES is '120', but this network's cycles are cut "
                                      "by '0'"),
    ({"timezone": "Asia/Tokyo", "cycle_cutoff_minutes": "30"}, "'Asia/Tokyo', but this network's cycles are cut by "
                                                               "'Asia/Shanghai'; POINTSNET_CYCLE_CUTOFF_MINUTES"),
    # the currency its amounts are in (until 2026-12-07 not kept: a host started with JPY read a CNY ledger's
    # fen as yen, awarding 100 times the points for a purchase and labelling the reports' money in yen)
    ({"currency": "jpy"}, "POINTSNET_CURRENCY is 'JPY', but this network's amounts are in 'CNY': another currency "
                          "would read every amount of the ledger in the wrong unit"),
    ({"currency": "KWD", "timezone": "UTC"}, "cycles are cut by 'Asia/Shanghai'; POINTSNET_CURRENCY is 'KWD', but "
                                             "this network's amounts are in 'CNY': other values would move the "
                                             "boundaries of cycles already posted into and settled; another currency"),
])
def test_once_the_ledger_has_an_entry_other_values_are_refused_and_change_nothing(posted, database_url,
                                                                                   variables, says):
    for args in (("clearing", "list"), ("serve-dashboard", "--port", "1")):
        refused(command(posted, database_url, *args, **variables), says)
    assert kept(posted) == {"timezone": "Asia/Shanghai", "cycle_cutoff_minutes": "0"}
    assert command(posted, database_url, "clearing", "list").returncode == 0  # its own values start


def test_an_api_process_refuses_to_start_with_another_zone(posted, database_url):
    from services.partner_api.app import from_environment

    with environment({"POINTSNET_DATA_DIR": str(posted.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
                      "POINTSNET_TIMEZONE": "Europe/London"}):
        with pytest.raises(CycleSettingsChanged, match="'Europe/London', but this network's cycles are cut by"):
            from_environment()


def test_before_the_first_entry_a_new_zone_replaces_the_recorded_one(network, database_url):
    assert command(network, database_url, "repair", "totals", timezone="UTC").returncode == 0
    assert kept(network)["timezone"] == "UTC"
    assert command(network, database_url, "repair", "totals", timezone="Europe/Paris",
                   cycle_cutoff_minutes="60").returncode == 0
    assert kept(network) == {"timezone": "Europe/Paris", "cycle_cutoff_minutes": "60"}


def test_the_record_follows_the_cut_of_the_first_entry_whatever_started_since(network, database_url):
    """`serve` starts with the default zone and keeps running; before any earn, a command run from a
    shell with another zone replaces the record; then the server posts the network's first entry, cut
    by its own zone. The record is the first entry's (written with it), so the server restarts with
    the values every entry was cut by, and the other zone is the one refused."""
    network.pin_cycle_settings()
    assert command(network, database_url, "repair", "totals", timezone="UTC").returncode == 0
    assert kept(network)["timezone"] == "UTC"
    partner = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
    network.earn(partner, make_member(network, partner), "e1", points=500)
    assert kept(network) == {"timezone": "Asia/Shanghai", "cycle_cutoff_minutes": "0"}
    assert command(network, database_url, "clearing", "list").returncode == 0
    refused(command(network, database_url, "clearing", "list", timezone="UTC"), "POINTSNET_TIMEZONE is 'UTC'")


def test_a_process_still_running_with_other_values_cannot_post_after_the_first_entry(network, database_url,
                                                                                        settings, clock):
    """Two processes started on a new network with two zones (neither refused: nothing was cut yet).
    The first entry fixes the record; the other process's next write is refused, not cut its way."""
    from shared.network import Network

    elsewhere = Network(settings.model_copy(update={"timezone": "Asia/Tokyo"}), database_url=database_url,
                        clock=clock)
    try:
        network.pin_cycle_settings()
        elsewhere.pin_cycle_settings()  # the record is Tokyo's now
        partner = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
        member = make_member(network, partner)
        elsewhere.earn(partner, member, "ny-1", points=100)  # the first entry, cut in Tokyo
        assert kept(network)["timezone"] == "Asia/Tokyo"
        with pytest.raises(CycleSettingsChanged, match="POINTSNET_TIMEZONE is 'Asia/Shanghai', but this network's "
                                                       "cycles are cut by 'Asia/Tokyo'"):
            network.earn(partner, member, "sh-1", points=100)
        elsewhere.earn(partner, member, "ny-2", points=100)
    finally:
        elsewhere.close()
    assert network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(Entry)).scalar_one(),
                      readonly=True) == 2
