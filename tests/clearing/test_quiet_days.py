"""Every business day gets its settlement directory, a day without any activity too (an empty,
signed set): the settlement job settles the days between the network's first cycle and the last one
past cut-off and grace, oldest first and a bounded number per run. A network without a cycle has
nothing to settle."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select

from shared.ledger.cycles import cycle_end
from shared.models import Settlement
from shared.settlement.reconcile import verify_directory
from shared.settlement.runs import DUE_PER_RUN, due_cycles, settlement_dir
from shared.signing import network_key_id
from tests.factories import make_member, make_partner

CYCLE = date(2026, 11, 20)  # the clock starts at 10:00 of this day, network time
TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")


def keys(network):
    key = network.signing_key
    return {network_key_id(key): key.public_key()}


def due(network, **kwargs) -> list[date]:
    return network.tx(lambda tx: due_cycles(tx, **kwargs), readonly=True)


def test_the_settlement_job_settles_a_day_without_activity(network, clock):
    partner = make_partner(network, "CoffeeCo", **TERMS)
    member = make_member(network, partner)
    network.earn(partner, member, "c1", points=500)
    clock.advance(days=3)  # the 21st and the 22nd are quiet
    network.earn(partner, member, "c2", points=10)
    clock.advance(days=1)
    settled = network.settle_due()
    assert [s["cycle_date"] for s in settled] == ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]
    quiet = date(2026, 11, 21)
    directory = settlement_dir(network.settings.data_dir, quiet)
    assert sorted(p.name for p in directory.iterdir()) == [
        "bilateral.csv", "manifest.json", "manifest.json.sig", "network-summary.csv"]
    assert (directory / "network-summary.csv").read_bytes() == (
        b"record_type,cycle_date,party,pays_minor,receives_minor,net_minor,payment_date,record_count,"
        b"control_net_minor\n"
        b"D,2026-11-21,network,0,0,0,2026-11-23,,\n"
        b"T,2026-11-21,,,,,,2,0\n")
    assert (directory / "bilateral.csv").read_bytes() == (
        b"record_type,cycle_date,payer,payee,line_kind,points,amount,amount_minor,record_count,"
        b"control_amount_minor\n"
        b"T,2026-11-21,,,,,,,1,0\n")
    assert network.tx(lambda tx: verify_directory(tx, directory, keys(network)), readonly=True) == []
    statuses = network.tx(lambda tx: [(s.party, s.net_minor, s.status) for s in tx.session.execute(
        select(Settlement).where(Settlement.cycle_date == quiet)).scalars()], readonly=True)
    assert statuses == [("network", 0, "nothing_due")]  # the day shows in `clearing list` too
    assert network.settle_due() == []


def test_a_network_without_a_cycle_has_nothing_to_settle(network, clock):
    make_partner(network, "CoffeeCo", **TERMS)
    clock.advance(days=5)
    assert network.settle_due() == []
    assert not (network.settings.data_dir / "settlements").exists()


def test_a_quiet_day_is_due_only_after_its_cut_off_and_grace(network, clock):
    partner = make_partner(network, "CoffeeCo", **TERMS)
    network.earn(partner, make_member(network, partner), "c1", points=5)
    grace = timedelta(minutes=network.settings.settlement_grace_minutes)
    quiet_end = cycle_end(CYCLE + timedelta(days=1), network.settings)
    clock.set(quiet_end + grace - timedelta(seconds=1))
    assert due(network) == [CYCLE]
    clock.set(quiet_end + grace)
    assert due(network) == [CYCLE, CYCLE + timedelta(days=1)]


def test_a_long_idle_network_catches_up_oldest_first_a_bounded_number_a_run(network, clock):
    partner = make_partner(network, "CoffeeCo", **TERMS)
    network.earn(partner, make_member(network, partner), "c1", points=5)
    clock.advance(days=400)  # the first cycle was long ago, every day since is quiet
    days = [CYCLE + timedelta(days=n) for n in range(400)]
    assert due(network) == days[:DUE_PER_RUN]
    # a day settled by hand (`clearing run --cycle`) is not due again; the rest stay oldest first
    network.settle(days[1])
    network.settle(days[0])
    assert due(network, limit=3) == days[2:5]
    network.settle(days[3])
    assert due(network, limit=3) == [days[2], days[4], days[5]]
    # a job run settles at most DUE_PER_RUN days
    assert [s["cycle_date"] for s in network.settle_due()] == [d.isoformat() for d in [days[2]] + days[4:4 + 30]]
    assert due(network, limit=2) == days[34:36]


def test_the_last_due_day_is_the_last_one_ended_in_network_time(network, clock):
    partner = make_partner(network, "CoffeeCo", **TERMS)
    network.earn(partner, make_member(network, partner), "c1", points=5)
    clock.set(datetime(2026, 11, 23, 15, 59, tzinfo=timezone.utc))  # 23:59 on the 23rd in Shanghai
    assert due(network) == [CYCLE, CYCLE + timedelta(days=1), CYCLE + timedelta(days=2)]
