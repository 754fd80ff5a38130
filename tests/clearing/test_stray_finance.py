"""Finance's overdue list and recording a payment leave out a settlement of a day before the network's
first cycle (a "stray" one an earlier release made: a typo run by hand), as ``clearing list``, the runs
list and the run's pages do (``runs.of_the_network``): it is not overdue, and marking it paid is refused
as for a cycle that was never settled (``unknown_cycle``), by the library and by
``pointsnet clearing mark-paid`` alike."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import insert, select

from shared.models import Settlement
from shared.settlement import runs
from shared.settlement.finance import overdue, record_payment
from shared.settlement.runs import UnknownCycle
from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.factories import make_member, make_partner

CYCLE = date(2026, 11, 20)  # the clock's first day: the network's first cycle
TYPO = date(2016, 11, 20)
UNSETTLED = date(2026, 11, 21)  # a real cycle not settled yet
TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")


@pytest.fixture
def stray(network, clock, monkeypatch):
    """CoffeeCo earns on the first cycle, settled; a run of TYPO an earlier release made, with a
    settlement still due for CoffeeCo, long past its payment date. The clock is then on the 23rd."""
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    network.earn(coffee, make_member(network, coffee), "c1", points=500)
    clock.advance(days=3)
    with monkeypatch.context() as old_release:  # what `clearing run --cycle 2016-11-20` did before
        old_release.setattr(runs, "first_cycle", lambda tx: TYPO)
        network.settle(TYPO)
    network.tx(lambda tx: tx.session.execute(insert(Settlement.__table__).values(
        cycle_date=TYPO, party=coffee, net_minor=-7, from_float_minor=0, payment_date=TYPO + timedelta(days=1),
        status="due")))
    network.settle(CYCLE)
    return coffee


def status_of(network, cycle, party) -> str:
    return network.tx(lambda tx: tx.session.execute(select(Settlement.status).where(
        Settlement.cycle_date == cycle, Settlement.party == party)).scalar_one(), readonly=True)


def test_a_stray_settlement_is_never_overdue(network, stray):
    late = network.tx(lambda tx: overdue(tx, CYCLE + timedelta(days=30)), readonly=True)
    assert {row["cycle_date"] for row in late} == {CYCLE.isoformat()}
    assert stray in {row["party"] for row in late}


def test_marking_a_stray_settlement_paid_is_refused_as_an_unknown_cycle(network, stray):
    for day in (TYPO, UNSETTLED):
        with pytest.raises(UnknownCycle) as refused:
            network.tx(lambda tx: record_payment(tx, day, stray, "BANK-1"))
        assert refused.value.code == "unknown_cycle" and refused.value.status == 404
        assert str(refused.value) == f"cycle {day.isoformat()} has not been settled"
    assert status_of(network, TYPO, stray) == "due"
    assert network.tx(lambda tx: record_payment(tx, CYCLE, stray, "BANK-2"))["status"] == "paid"


def test_the_command_line_refuses_a_stray_cycle_as_one_never_settled(network, clock, database_url, stray):
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z"), "COLUMNS": "250"}
    answers = [run_pointsnet("clearing", "mark-paid", "--cycle", day.isoformat(), "--party", stray,
                             "--bank-reference", "BANK-1", env=env) for day in (TYPO, UNSETTLED)]
    for day, done in zip((TYPO, UNSETTLED), answers):
        assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout)
        assert f"unknown_cycle: cycle {day.isoformat()} has not been settled" in done.stderr, done.stderr
    assert status_of(network, TYPO, stray) == "due"


def test_a_stray_settlement_is_not_counted_due_on_a_calendar_day(network, stray):
    """Adding or removing a calendar day counts the settlements still due on it: a stray one is no
    settlement of the network's (found in review of 1db45e0)."""
    from shared.settlement.calendar import add_calendar_day, remove_calendar_day

    day = TYPO + timedelta(days=1)  # the stray settlement's payment date
    assert network.tx(lambda tx: add_calendar_day(tx, day, "a holiday"))["settlements_due_that_day"] == 0
    assert network.tx(lambda tx: remove_calendar_day(tx, day))["settlements_due_that_day"] == 0
