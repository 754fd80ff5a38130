"""Points outstanding (open in unexpired lots, by who funds them): measured by the worker every
minute into one row per billing, and read from there by every scrape of ``/metrics`` — never summed
over the network's every open lot at each scrape of each API process."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client import REGISTRY

from services.clearing.jobs import ledger_jobs
from shared.ledger.outstanding import keep_measure, last_measured, measure_outstanding, outstanding_now
from shared.observability import refresh_liability
from tests.factories import make_member, make_partner

PREPAID = dict(billing="prepaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")


def gauge(billing: str) -> float:
    return REGISTRY.get_sample_value("pointsnet_outstanding_points", {"billing": billing})


def measured_at() -> float:
    return REGISTRY.get_sample_value("pointsnet_outstanding_points_measured_timestamp_seconds")


def test_the_worker_measures_what_is_open_by_who_funds_it(network, clock):
    shop, prepaid = make_partner(network), make_partner(network, **PREPAID)
    member = make_member(network, shop, also_linked_to=(prepaid,))
    network.earn(shop, member, "p-1", points=25)
    network.earn(prepaid, member, "q-1", points=40)
    network.grant_bonus(member, 7, reason="welcome")
    network.burn(shop, member, "b-1", 30)  # the earliest lot first: 25 of the shop's, 5 of the prepaid's
    assert network.tx(last_measured, readonly=True) is None
    measured, at = measure_outstanding(network)
    assert measured == network.tx(outstanding_now, readonly=True) == {"postpaid": 0, "prepaid": 35, "network": 7}
    assert network.tx(last_measured, readonly=True) == (measured, at) and at == clock.now()

    network.earn(shop, member, "p-2", points=100)
    assert network.tx(last_measured, readonly=True)[0] == measured  # kept until the next measure
    clock.advance(minutes=1)
    assert measure_outstanding(network)[0] == {"postpaid": 100, "prepaid": 35, "network": 7}
    assert network.tx(last_measured, readonly=True) == ({"postpaid": 100, "prepaid": 35, "network": 7}, clock.now())


def test_a_late_measure_never_replaces_a_later_one(network, clock):
    """Two workers may both measure during a change of leader; the one that read earlier keeps nothing."""
    later = clock.now()
    network.tx(lambda tx: keep_measure(tx, {"postpaid": 5, "prepaid": 0, "network": 0}, later))
    network.tx(lambda tx: keep_measure(tx, {"postpaid": 9, "prepaid": 0, "network": 0}, later - timedelta(seconds=1)))
    assert network.tx(last_measured, readonly=True) == ({"postpaid": 5, "prepaid": 0, "network": 0}, later)


def test_expired_points_are_not_outstanding(network, clock):
    shop = make_partner(network)
    member = make_member(network, shop)
    earned = network.earn(shop, member, "p-1", points=25)
    clock.set(datetime.fromisoformat(earned["lots"][0]["expires_at"]))
    assert measure_outstanding(network)[0]["postpaid"] == 0  # due, even before the expiry job ran


def test_a_scrape_reads_the_last_measure_and_sums_only_before_the_first(network, clock):
    shop = make_partner(network)
    member = make_member(network, shop)
    network.earn(shop, member, "p-1", points=25)
    network.tx(refresh_liability, readonly=True)
    assert gauge("postpaid") == 25  # nothing measured yet: summed for this scrape
    [job] = [job for job in ledger_jobs(network) if job.name == "outstanding_points"]
    job.run()  # the worker's own gauges are set by the job
    measured = clock.now()
    assert measured_at() == measured.timestamp()
    network.earn(shop, member, "p-2", points=10)
    clock.advance(minutes=5)  # a stale measure: the worker stopped
    network.tx(refresh_liability, readonly=True)
    assert gauge("postpaid") == 25 and measured_at() == measured.timestamp()  # its figure and its time
    job.run()
    network.tx(refresh_liability, readonly=True)
    assert gauge("postpaid") == 35 and measured_at() == clock.now().timestamp()
