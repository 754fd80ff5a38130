"""The liability's expiry schedule counts a lot in the month of the last instant its points can be used, as
an expiry reminder dates them (docs/programme.md): under an end-of-period policy every lot expires at
midnight starting the next period, and finance reading the schedule saw each of them a month late (until
2026-12-07). A lot expiring within a month stays in that month."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

import pytest

from shared.config import Settings
from shared.models import Lot
from shared.reports.network import network_report
from shared.reports.partner import partner_report
from shared.reports.period import Period
from tests.factories import make_member, make_partner


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=Path(tmp_path) / "data", expiry_policy="end_of_month:1")


def test_an_end_of_month_lot_is_scheduled_in_its_last_month(network, clock):
    clock.set(datetime(2026, 11, 10, 2, 0, tzinfo=timezone.utc))  # 10:00 in Shanghai
    partner = make_partner(network, "P")
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=100)
    [expires_at] = network.tx(lambda tx: tx.session.execute(select(Lot.expires_at)).scalars().all(), readonly=True)
    local = expires_at.replace(tzinfo=expires_at.tzinfo or timezone.utc).astimezone(network.settings.zone)
    assert (local.year, local.month, local.day, local.hour) == (2027, 1, 1, 0)  # usable to the end of December
    day = Period.parse("2026-11-10", "2026-11-10")
    for report in network.tx(lambda tx: (partner_report(tx, partner, day), network_report(tx, day)), readonly=True):
        assert report["liability"]["expiry_schedule"] == [{"month": "2026-12", "points": 100}]


def test_a_lot_expiring_within_a_month_stays_in_it(network, clock):
    clock.set(datetime(2026, 11, 10, 2, 0, tzinfo=timezone.utc))
    partner = make_partner(network, "P")
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=100)
    # a lot expiring inside January (set by hand: this policy makes none)
    network.tx(lambda tx: tx.session.execute(Lot.__table__.update().values(
        expires_at=datetime(2027, 1, 15, 4, 0, tzinfo=timezone.utc))))
    report = network.tx(lambda tx: partner_report(tx, partner, Period.parse("2026-11-10", "2026-11-10")),
                        readonly=True)
    assert report["liability"]["expiry_schedule"] == [{"month": "2027-01", "points": 100}]
