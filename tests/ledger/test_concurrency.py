"""Concurrency on PostgreSQL: no double spend, exactly once, no serialisation of one partner's traffic."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from shared.errors import HoldNotOpen, InsufficientPoints, RequestInProgress
from shared.jobs.runner import Job, JobRunner
from shared.models import Entry
from shared.network import Network
from tests.factories import make_member, make_partner, verify_ok

pytestmark = pytest.mark.postgres
THREADS = 32


def run_together(count, fn):
    barrier = threading.Barrier(count)

    def call(i):
        barrier.wait()
        try:
            return fn(i)
        except Exception as exc:  # collected, asserted on by the caller
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))


def test_burns_racing_on_one_member_spend_exactly_the_balance(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "seed", points=1000)
    outcomes = run_together(THREADS, lambda i: network.burn(partner, member, f"burn-{i}", 70))
    succeeded = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, InsufficientPoints)]
    assert len(succeeded) == 1000 // 70 and len(refused) == THREADS - len(succeeded)
    assert network.balance(member)["available"] == 1000 - 70 * len(succeeded)
    verify_ok(network)


def test_one_idempotency_key_posts_once(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    outcomes = run_together(THREADS, lambda i: network.earn(partner, member, "order-1", points=25,
                                                            idempotency_key="key-1"))
    results = [o for o in outcomes if isinstance(o, dict)]
    assert all(isinstance(o, (dict, RequestInProgress)) for o in outcomes), outcomes
    assert results and all(r == results[0] for r in results)
    assert network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(Entry).where(
        Entry.reference == "order-1")).scalar_one()) == 1
    assert network.earn(partner, member, "order-1", points=25, idempotency_key="key-1") == results[0]
    assert network.balance(member)["available"] == 25


def test_one_partner_earning_for_many_members_does_not_serialise_into_errors(network):
    partner = make_partner(network)
    members = [make_member(network, partner) for _ in range(THREADS)]
    outcomes = run_together(THREADS, lambda i: [network.earn(partner, members[i], f"e{i}-{n}", points=10)
                                                for n in range(5)])
    assert all(isinstance(o, list) for o in outcomes), [o for o in outcomes if not isinstance(o, list)]
    assert all(network.balance(m)["available"] == 50 for m in members)
    verify_ok(network)


def test_capture_and_void_racing_resolve_a_hold_once(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "seed", points=500)
    hold = network.hold(partner, member, "h1", 300)
    outcomes = run_together(8, lambda i: network.capture(partner, hold["hold_id"], 200) if i % 2
                            else network.void(partner, hold["hold_id"]))
    assert sum(isinstance(o, dict) for o in outcomes) == 1
    assert all(isinstance(o, (dict, HoldNotOpen)) for o in outcomes), outcomes
    balance = network.balance(member)
    assert balance["held"] == 0 and balance["available"] in (300, 500)
    verify_ok(network)


def test_only_one_of_two_job_runners_acts(network, settings, database_url):
    calls = []
    networks = [Network(settings, database_url=database_url) for _ in range(2)]
    runners = [JobRunner(n.db, [Job("probe", 60, lambda i=i: calls.append(i))]) for i, n in enumerate(networks)]
    try:
        ran = [runner.run_job(runner.jobs[0]) for runner in runners for _ in range(3)]
        assert ran.count(True) == 3 and len(set(calls)) == 1
        leader = calls[0]
        runners[leader].shutdown()  # the leader goes away: the other takes over
        assert runners[1 - leader].run_job(runners[1 - leader].jobs[0])
        assert calls[-1] == 1 - leader
    finally:
        for runner in runners:
            runner.shutdown()
        for n in networks:
            n.close()


def test_racing_reversals_never_return_more_than_was_spent(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "seed", points=500)
    network.burn(partner, member, "burn", 100)
    network.earn(partner, member, "earn-2", points=100)
    outcomes = run_together(8, lambda i: network.reverse(partner, f"rb-{i}", "burn", 30) if i % 2
                            else network.reverse(partner, f"re-{i}", "earn-2", 30))
    succeeded = [o for o in outcomes if isinstance(o, dict)]
    assert len(succeeded) == 6  # 3 × 30 of the burn's 100, 3 × 30 of the earn's 100
    assert network.balance(member)["available"] == 500 - 100 + 90 + 100 - 90
    verify_ok(network)
