"""Which cycles a settlement by hand (``pointsnet clearing run --cycle D``) may settle, and where the
settlement job starts.

The network's first cycle is the business day of its first ledger entry (docs/settlement-files.md):
no obligation line, and so no money, can lie before it. A manual run of a day before it is refused
with ``unknown_cycle`` and writes nothing (no ``cycles`` row, no directory), so a typo — 2016 for
2026 — cannot make the job backfill ten years of empty signed days while the real cycles wait. A day
that has not ended stays refused with ``cycle_not_ended``. The job counts its due days from the first
entry's cycle, never from a ``cycles`` row a manual run of an earlier day (before this rule) made."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from shared.models import Cycle, SettlementRun
from shared.settlement import runs
from shared.settlement.runs import CycleNotEnded, UnknownCycle, due_cycles, settlement_dir
from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.factories import make_member, make_partner, verify_ok

CYCLE = date(2026, 11, 20)  # the clock starts at 10:00 of this day, network time
TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
TYPO = date(2016, 11, 20)


def due(network) -> list[date]:
    return network.tx(due_cycles, readonly=True)


def cycle_rows(network) -> list[date]:
    return network.tx(lambda tx: list(tx.session.execute(
        select(Cycle.cycle_date).order_by(Cycle.cycle_date)).scalars()), readonly=True)


def runs_count(network) -> int:
    return network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(SettlementRun)).scalar_one(),
                      readonly=True)


@pytest.fixture
def active(network, clock):
    """CoffeeCo's member earns 500 on 2026-11-20 (the first entry); the clock is then on the 23rd."""
    partner = make_partner(network, "CoffeeCo", **TERMS)
    network.earn(partner, make_member(network, partner), "c1", points=500)
    clock.advance(days=3)
    return partner


def cli(network, clock, database_url, *args):
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}
    return run_pointsnet(*args, env=env)


def test_a_day_before_the_first_entrys_cycle_is_refused_and_writes_nothing(network, active):
    before = cycle_rows(network)
    for day in (TYPO, CYCLE - timedelta(days=1)):
        with pytest.raises(UnknownCycle) as refused:
            network.settle(day)
        assert refused.value.code == "unknown_cycle" and refused.value.status == 404
        assert str(refused.value) == (f"cycle {day} is before the network's first cycle, {CYCLE} "
                                      f"(the business day of its first ledger entry): there is nothing to settle")
        assert not settlement_dir(network.settings.data_dir, day).exists()
    assert cycle_rows(network) == before  # no row for the refused days
    assert runs_count(network) == 0
    assert due(network) == [CYCLE, CYCLE + timedelta(days=1), CYCLE + timedelta(days=2)]


def test_the_first_cycle_and_a_quiet_day_after_it_are_settled_by_hand(network, active):
    assert network.settle(CYCLE)["already_settled"] is False
    quiet = CYCLE + timedelta(days=1)  # no entry that day: still a cycle of the network
    assert network.settle(quiet)["already_settled"] is False
    assert due(network) == [CYCLE + timedelta(days=2)]
    verify_ok(network)


def test_a_day_that_has_not_ended_stays_refused_as_not_ended(network, active, clock):
    today = CYCLE + timedelta(days=3)
    for day in (today, today + timedelta(days=1), date(2036, 11, 20)):
        with pytest.raises(CycleNotEnded):
            network.settle(day)
    assert cycle_rows(network) == [CYCLE]


def test_a_network_without_an_entry_has_no_cycle_to_settle_by_hand(network, clock):
    make_partner(network, "CoffeeCo", **TERMS)  # a partner, but not a single entry yet
    clock.advance(days=5)
    with pytest.raises(UnknownCycle) as refused:
        network.settle(CYCLE)
    assert str(refused.value) == (f"cycle {CYCLE} cannot be settled: the network has no cycle yet (its first "
                                  f"cycle is the business day of its first ledger entry)")
    with pytest.raises(CycleNotEnded):  # a day that has not ended is still that, first
        network.settle(CYCLE + timedelta(days=5))
    assert cycle_rows(network) == [] and due(network) == []
    assert not (network.settings.data_dir / "settlements").exists()


def test_the_job_does_not_start_from_a_day_an_earlier_version_settled_by_hand(network, active, monkeypatch):
    """A database from before the refusal may hold a ``cycles`` row (and a settlement) for a day long
    before the first entry. The job counts from the first entry's cycle, not from that row: it settles
    the real cycles and never backfills the years in between. Re-running the stray day by hand says
    it is settled, as for any settled cycle."""
    with monkeypatch.context() as old_version:  # what `clearing run --cycle 2016-11-20` did before
        old_version.setattr(runs, "first_cycle", lambda tx: TYPO)
        stray = network.settle(TYPO)
    assert stray["already_settled"] is False and cycle_rows(network)[0] == TYPO
    assert due(network) == [CYCLE, CYCLE + timedelta(days=1), CYCLE + timedelta(days=2)]
    assert [s["cycle_date"] for s in network.settle_due()] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert network.settle_due() == [] and runs_count(network) == 4
    again = network.settle(TYPO)
    assert again["already_settled"] is True and again["run_id"] == stray["run_id"]


def test_the_command_line_refuses_a_day_before_the_first_cycle_in_one_line(network, active, clock, database_url):
    done = cli(network, clock, database_url, "clearing", "run", "--cycle", "2016-11-21")
    assert done.returncode != 0 and done.stdout == "", (done.returncode, done.stdout)
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert "before the network's first cycle, 2026-11-20" in done.stderr, done.stderr
    assert due(network)[0] == CYCLE and cycle_rows(network) == [CYCLE]
    settled = cli(network, clock, database_url, "clearing", "run", "--cycle", "2026-11-20")
    assert settled.returncode == 0, settled.stderr
    future = cli(network, clock, database_url, "clearing", "run", "--cycle", "2026-11-23")
    assert future.returncode != 0 and "cannot be settled before" in future.stderr, future.stderr


def listing(network, clock, database_url):
    """`pointsnet clearing list` on a terminal wide enough for whole cells."""
    return run_pointsnet("clearing", "list", env={
        "POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
        "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z"), "COLUMNS": "250"})


def test_clearing_list_shows_no_stray_settlement_before_the_first_cycle(network, active, clock, database_url,
                                                                        monkeypatch):
    """A settlement an earlier version made of a day before the network's first cycle (a typo run by
    hand) is no cycle of the network: `clearing list` shows the real cycles only."""
    with monkeypatch.context() as old_version:  # what `clearing run --cycle 2016-11-20` did before
        old_version.setattr(runs, "first_cycle", lambda tx: TYPO)
        network.settle(TYPO)
    network.settle(CYCLE)
    listed = listing(network, clock, database_url)
    assert listed.returncode == 0, listed.stderr
    assert "2016-11-20" not in listed.stdout, listed.stdout
    assert "2026-11-20" in listed.stdout and "ptn_" in listed.stdout, listed.stdout


def test_clearing_list_of_a_network_without_an_entry_is_empty(network, clock, database_url, monkeypatch):
    make_partner(network, "CoffeeCo", **TERMS)
    with monkeypatch.context() as old_version:
        old_version.setattr(runs, "first_cycle", lambda tx: TYPO)
        network.settle(TYPO)
    clock.advance(days=1)
    listed = listing(network, clock, database_url)
    assert listed.returncode == 0 and "2016-11-20" not in listed.stdout, listed.stdout
