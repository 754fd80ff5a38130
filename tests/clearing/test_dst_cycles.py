"""Cycles around daylight-saving changes in the network's time zone.

A cycle ends at its cut-off (``cycle_end``); every instant belongs to the cycle whose end is the first
one after it. Before 2026-12-04 the two were computed separately: in New York with a cut-off of
01:30, the autumn night's second 01:00–01:30 was in cycle 10-31 although its cut-off was stated as
the first 01:30, so the settlement job found the cycle due and then refused to settle it, every
minute, and the manifest's cut-off preceded entries in it.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared.clock import FixedClock
from shared.config import Settings
from shared.ledger.cycles import cycle_date_for, cycle_end
from shared.models import Entry
from shared.network import Network
from tests.factories import make_member, make_partner

UTC = timezone.utc
# zones with whole-hour and half-hour changes, both hemispheres, and one without changes
ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Asia/Shanghai"]
CUTOFFS = [0, 30, 60, 90, 120, 135, 150, 180, 23 * 60 + 59]


def _instants(start: datetime, end: datetime, step: timedelta):
    while start < end:
        yield start
        start += step


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("cutoff", CUTOFFS)
def test_instants_move_forward_through_cycles_and_each_cycle_ends_at_its_cut_off(zone, cutoff):
    settings = Settings(timezone=zone, cycle_cutoff_minutes=cutoff)
    for first in (date(2026, 3, 5), date(2026, 4, 2), date(2026, 9, 3), date(2026, 10, 22)):  # both changes
        previous = None
        for instant in _instants(datetime.combine(first, datetime.min.time(), UTC),
                                 datetime.combine(first + timedelta(days=12), datetime.min.time(), UTC),
                                 timedelta(minutes=5)):
            cycle = cycle_date_for(instant, settings)
            assert previous is None or cycle in (previous, previous + timedelta(days=1)), (instant, previous, cycle)
            assert cycle_end(cycle - timedelta(days=1), settings) <= instant < cycle_end(cycle, settings), (
                instant, cycle, cycle_end(cycle, settings))
            previous = cycle


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("cutoff", CUTOFFS)
def test_a_cycle_ends_exactly_where_the_next_cycle_begins(zone, cutoff):
    settings = Settings(timezone=zone, cycle_cutoff_minutes=cutoff)
    day = date(2026, 1, 1)
    while day < date(2027, 1, 1):
        end = cycle_end(day, settings)
        assert cycle_date_for(end - timedelta(seconds=1), settings) == day
        assert cycle_date_for(end, settings) == day + timedelta(days=1)
        day += timedelta(days=1)


def test_a_repeated_cut_off_ends_the_day_at_its_later_occurrence_and_a_skipped_one_at_the_change():
    new_york = dict(timezone="America/New_York")
    # autumn: 01:30 happens at 05:30Z (EDT) and again at 06:30Z (EST); the day is 25 hours long
    assert cycle_end(date(2026, 10, 31), Settings(**new_york, cycle_cutoff_minutes=90)) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    # spring: 02:30 never happens; at 07:00Z the clock jumps from 02:00 EST to 03:00 EDT
    assert cycle_end(date(2026, 3, 7), Settings(**new_york, cycle_cutoff_minutes=150)) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    # an ordinary day ends at its wall-clock cut-off
    assert cycle_end(date(2026, 6, 1), Settings(**new_york, cycle_cutoff_minutes=90)) == datetime(2026, 6, 2, 5, 30, tzinfo=UTC)


@pytest.fixture
def new_york(tmp_path, database_url):
    # a network in New York whose business day ends at 01:30, with 30 minutes' grace for settlement
    settings = Settings(data_dir=Path(tmp_path) / "data", timezone="America/New_York", cycle_cutoff_minutes=90,
                        settlement_grace_minutes=30)
    clock = FixedClock(datetime(2026, 10, 31, 16, 0, tzinfo=UTC))
    network = Network(settings, database_url=database_url, clock=clock, pool_size=10)
    yield network, clock
    network.close()


def test_the_settlement_job_settles_the_cycle_of_the_autumn_night_once_it_has_ended(new_york):
    network, clock = new_york
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "e-1", points=100)
    clock.set(datetime(2026, 11, 1, 5, 45, tzinfo=UTC))  # 01:45 EDT: the first 01:45 of the night
    network.earn(partner, member, "e-2", points=10)
    clock.set(datetime(2026, 11, 1, 6, 5, tzinfo=UTC))  # 01:05 EST: the second 01:05
    network.earn(partner, member, "e-3", points=1)
    assert network.settle_due() == []  # the day ends at the second 01:30 (06:30Z), and grace follows

    clock.set(datetime(2026, 11, 1, 6, 40, tzinfo=UTC))  # 01:40 EST: the next business day
    network.earn(partner, member, "e-4", points=1000)
    clock.set(datetime(2026, 11, 1, 7, 0, tzinfo=UTC))  # cut-off + grace
    settled = network.settle_due()
    assert [s["cycle_date"] for s in settled] == ["2026-10-31"]

    cycles = dict(network.tx(lambda tx: [(e.reference, e.cycle_date) for e in tx.session.query(Entry).filter(
        Entry.reference.in_(["e-1", "e-2", "e-3", "e-4"]))], readonly=True))
    assert cycles == {"e-1": date(2026, 10, 31), "e-2": date(2026, 10, 31), "e-3": date(2026, 10, 31),
                      "e-4": date(2026, 11, 1)}
    manifest = json.loads((Path(settled[0]["directory"]) / "manifest.json").read_text())
    assert manifest["cutoff"] == "2026-11-01T06:30:00Z"
