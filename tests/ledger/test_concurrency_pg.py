"""The ledger under many concurrent writers on PostgreSQL.

Binding rules (ARCHITECTURE.md, "The points ledger"): no double spend, no lost
update, exactly once per (partner, Idempotency-Key) and (partner, reference), one
partner's traffic is not serialised on a hot row, a hold resolves at most once, and
no entry ever commits into a closed cycle. Every test makes its calls overlap for
real: the threads wait on one barrier and then call the network at once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import create_engine, func, select, text

from shared.db.database import normalise_url
from shared.errors import CycleClosed, HoldNotOpen, InsufficientPoints, RequestInProgress
from shared.ledger import idempotency
from shared.ledger.cycles import close_cycle, cycle_date_for
from shared.ledger.events import Event
from shared.ledger.posting import post_events
from shared.models import Entry, Hold, IdempotencyRecord, ObligationLine
from tests.factories import make_member, make_partner, verify_ok

pytestmark = pytest.mark.postgres
THREADS = 32


def run_together(count: int, fn, *, timeout: float = 60) -> list:
    """Call ``fn(i)`` for i in range(count) on ``count`` threads released at once by a barrier.

    Returns one outcome per call: its result, or the exception it raised.
    """
    barrier = threading.Barrier(count)

    def call(i):
        barrier.wait(timeout=timeout)
        try:
            return fn(i)
        except Exception as exc:  # collected; the test asserts on every outcome
            return exc

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(call, i) for i in range(count)]
        return [future.result(timeout=timeout) for future in futures]


def unexpected(outcomes: list, *allowed: type) -> list:
    """Outcomes that are neither a result (dict) nor one of the allowed refusals."""
    return [o for o in outcomes if not isinstance(o, (dict, *allowed))]


def count(network, query) -> int:
    return network.tx(lambda tx: tx.session.execute(query).scalar_one(), readonly=True)


def entries_of(network, **where) -> int:
    query = select(func.count()).select_from(Entry)
    for column, value in where.items():
        query = query.where(getattr(Entry, column) == value)
    return count(network, query)


# -- no double spend -------------------------------------------------------------------------


def test_racing_burns_spend_exactly_what_the_member_has(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    for n in range(4):  # several lots, so burns consume across lot boundaries
        network.earn(partner, member, f"seed-{n}", points=250)
    initial, price, threads = 1000, 70, 40

    outcomes = run_together(threads, lambda i: network.burn(partner, member, f"burn-{i}", price))

    assert not unexpected(outcomes, InsufficientPoints), unexpected(outcomes, InsufficientPoints)
    succeeded = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, InsufficientPoints)]
    assert len(succeeded) == initial // price  # 14 of 40: exactly the affordable ones
    assert len(refused) == threads - len(succeeded)
    assert all(o.extra["available"] < price for o in refused)
    balance = network.balance(member)
    assert balance["available"] == initial - price * len(succeeded) >= 0
    assert balance["held"] == 0
    assert sum(lot["remaining"] for lot in balance["lots"]) == balance["available"]
    # each success saw a different, strictly decreasing balance: no lost update
    assert sorted(o["balance"]["available"] for o in succeeded) == [
        initial - price * k for k in range(len(succeeded), 0, -1)]
    assert entries_of(network, kind="burn") == len(succeeded)
    verify_ok(network)


def test_racing_holds_captures_and_burns_on_one_member_never_double_spend(network):
    partner = make_partner(network)
    other = make_partner(network)
    member = make_member(network, partner, also_linked_to=(other,))
    for n in range(5):
        network.earn(partner, member, f"seed-{n}", points=200)
    initial, price = 1000, 70

    def spend(i):
        if i % 2:  # half burn outright (at two partners) ...
            return network.burn(partner if i % 4 == 1 else other, member, f"burn-{i}", price)
        hold = network.hold(partner, member, f"hold-{i}", price)  # ... half hold, then capture all of it
        return network.capture(partner, hold["hold_id"], reference=f"capture-{i}")

    outcomes = run_together(THREADS, spend)

    assert not unexpected(outcomes, InsufficientPoints), unexpected(outcomes, InsufficientPoints)
    succeeded = [o for o in outcomes if isinstance(o, dict)]
    assert len(succeeded) == initial // price
    captured = [o for o in succeeded if o["kind"] == "capture"]
    assert all(o["captured"] == price and o["released"] == 0 for o in captured)
    balance = network.balance(member)
    assert balance["held"] == 0
    assert balance["available"] == initial - price * len(succeeded) >= 0
    assert sum(lot["remaining"] for lot in balance["lots"]) == balance["available"] + balance["held"]
    assert entries_of(network, kind="hold") == len(captured) == entries_of(network, kind="capture")
    verify_ok(network)


def test_open_holds_reserve_points_against_racing_burns(network):
    """Holds left open keep their points: burns racing them can only take what is not held."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "seed", points=1000)

    ask = [90 if i % 2 else 50 for i in range(THREADS)]  # odd threads hold 90, even threads burn 50
    outcomes = run_together(THREADS, lambda i: network.hold(partner, member, f"h{i}", ask[i]) if i % 2
                            else network.burn(partner, member, f"b{i}", ask[i]))

    assert not unexpected(outcomes, InsufficientPoints), unexpected(outcomes, InsufficientPoints)
    held = sum(ask[i] for i, o in enumerate(outcomes) if isinstance(o, dict) and o["kind"] == "hold")
    burnt = sum(ask[i] for i, o in enumerate(outcomes) if isinstance(o, dict) and o["kind"] == "burn")
    refused = [i for i, o in enumerate(outcomes) if isinstance(o, InsufficientPoints)]
    assert all(outcomes[i].extra["available"] < ask[i] for i in refused)
    balance = network.balance(member)
    assert balance["available"] == 1000 - held - burnt >= 0
    assert balance["held"] == held
    assert all(balance["available"] < ask[i] for i in refused)  # available only falls: no refusal was wrong
    assert sum(lot["reserved"] for lot in balance["lots"]) == held
    assert sum(lot["remaining"] for lot in balance["lots"]) == 1000 - burnt
    verify_ok(network)


# -- a hold resolves once ----------------------------------------------------------------------


def test_capture_and_void_racing_on_each_hold_resolve_it_exactly_once(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "seed", points=2000)
    holds = [network.hold(partner, member, f"hold-{n}", 200)["hold_id"] for n in range(8)]
    racers = THREADS // len(holds)  # 4 racers per hold: void, full capture, two partial captures

    def resolve(i):
        hold_id, role = holds[i // racers], i % racers
        if role == 0:
            return network.void(partner, hold_id)
        return network.capture(partner, hold_id, None if role == 1 else 50 * role, reference=f"cap-{i}")

    outcomes = run_together(THREADS, resolve)

    assert not unexpected(outcomes, HoldNotOpen), unexpected(outcomes, HoldNotOpen)
    winners = Counter(o["hold_id"] for o in outcomes if isinstance(o, dict))
    assert winners == {hold_id: 1 for hold_id in holds}  # each hold: exactly one resolution succeeded
    captured = sum(o["captured"] for o in outcomes if isinstance(o, dict))
    rows = network.tx(lambda tx: tx.session.execute(select(Hold.id, Hold.status, Hold.captured_points,
                                                           Hold.resolved_entry_id)).all(), readonly=True)
    assert {row.status for row in rows} <= {"captured", "voided"}
    assert sum(row.captured_points for row in rows) == captured
    resolutions = network.tx(lambda tx: tx.session.execute(
        select(Entry.hold_id, func.count()).where(Entry.kind.in_(("capture", "void"))).group_by(Entry.hold_id)
    ).all(), readonly=True)
    assert dict(resolutions) == {hold_id: 1 for hold_id in holds}
    balance = network.balance(member)
    assert balance["held"] == 0 and balance["available"] == 2000 - captured
    verify_ok(network)


def test_timed_out_holds_are_released_once_while_jobs_and_partners_race(network, clock):
    """Several processes' expiry jobs and late capture/void calls race on timed-out holds."""
    partner = make_partner(network)
    members = [make_member(network, partner) for _ in range(4)]
    holds = []
    for n, member in enumerate(members):
        network.earn(partner, member, f"seed-{n}", points=500)
        holds += [network.hold(partner, member, f"hold-{n}-{k}", 100)["hold_id"] for k in range(3)]
    clock.advance(minutes=network.settings.hold_timeout_minutes + 1)

    def act(i):
        if i < 8:
            return network.expire_holds()
        hold_id = holds[i % len(holds)]
        return network.capture(partner, hold_id) if i % 2 else network.void(partner, hold_id)

    outcomes = run_together(20, act)

    released = outcomes[:8]
    assert all(isinstance(o, int) for o in released), released
    assert sum(released) == len(holds)  # each timed-out hold released by exactly one job run
    late = outcomes[8:]
    assert all(isinstance(o, HoldNotOpen) for o in late), late
    assert entries_of(network, kind="hold_expiry") == len(holds)
    assert entries_of(network, kind="capture") == entries_of(network, kind="void") == 0
    for member in members:
        assert network.balance(member)["available"] == 500 and network.balance(member)["held"] == 0
    verify_ok(network)


# -- exactly once ------------------------------------------------------------------------------


def test_one_idempotency_key_raced_by_32_calls_posts_once(network):
    partner = make_partner(network)
    member = make_member(network, partner)

    outcomes = run_together(THREADS, lambda i: network.earn(partner, member, "order-1", points=25,
                                                            idempotency_key="key-1"))

    assert not unexpected(outcomes, RequestInProgress), unexpected(outcomes, RequestInProgress)
    results = [o for o in outcomes if isinstance(o, dict)]
    assert results, "at least the call that ran must answer with its result"
    assert all(r == results[0] for r in results)  # twins that came later got the stored result
    assert entries_of(network, reference="order-1") == 1
    assert entries_of(network, kind="earn") == 1
    assert count(network, select(func.count()).select_from(IdempotencyRecord)
                 .where(IdempotencyRecord.key == "key-1")) == 1
    assert network.earn(partner, member, "order-1", points=25, idempotency_key="key-1") == results[0]
    assert network.balance(member)["available"] == 25
    verify_ok(network)


def test_one_idempotency_key_on_a_burn_raced_by_32_calls_spends_once(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "seed", points=100)

    outcomes = run_together(THREADS, lambda i: network.burn(partner, member, "buy-1", 60, idempotency_key="k-burn"))

    # A twin that ran after the first committed must replay it, never burn again (no InsufficientPoints).
    assert not unexpected(outcomes, RequestInProgress), unexpected(outcomes, RequestInProgress)
    results = [o for o in outcomes if isinstance(o, dict)]
    assert results and all(r == results[0] for r in results)
    assert entries_of(network, kind="burn") == 1
    assert network.burn(partner, member, "buy-1", 60, idempotency_key="k-burn") == results[0]
    assert network.balance(member)["available"] == 40
    verify_ok(network)


def test_a_twin_of_a_running_request_is_told_at_once_and_the_retry_gets_the_original(network, database_url):
    partner = make_partner(network)
    member = make_member(network, partner)
    engine = create_engine(normalise_url(database_url), isolation_level="AUTOCOMMIT")
    lock = {"k": idempotency.advisory_key(partner, "slow-key")}
    try:
        with engine.connect() as first:  # stands in for the first request, still running
            first.execute(text("SELECT pg_advisory_lock(:k)"), lock)
            started = time.monotonic()
            with pytest.raises(RequestInProgress):
                network.earn(partner, member, "slow-order", points=10, idempotency_key="slow-key")
            assert time.monotonic() - started < 2, "request_in_progress must come at once, not after waiting"
            assert entries_of(network, reference="slow-order") == 0
            first.execute(text("SELECT pg_advisory_unlock(:k)"), lock)
    finally:
        engine.dispose()
    original = network.earn(partner, member, "slow-order", points=10, idempotency_key="slow-key")
    assert network.earn(partner, member, "slow-order", points=10, idempotency_key="slow-key") == original
    assert entries_of(network, reference="slow-order") == 1


def test_one_reference_raced_under_32_different_keys_posts_once(network):
    partner = make_partner(network)
    member = make_member(network, partner)

    outcomes = run_together(THREADS, lambda i: network.earn(partner, member, "receipt-9", points=40,
                                                            idempotency_key=f"key-{i}"))

    assert all(isinstance(o, dict) for o in outcomes), unexpected(outcomes)  # no unique violation leaks
    assert all(o == outcomes[0] for o in outcomes)  # same content: the original result, for every key
    assert entries_of(network, reference="receipt-9") == 1
    assert network.balance(member)["available"] == 40
    verify_ok(network)


@pytest.mark.parametrize("keys", ["a new key per call", "no key"])
def test_one_burn_reference_raced_spends_once_and_answers_the_original(network, keys):
    """(partner, reference) is unique, and a new key with a reference already used, same content, gets
    the original result (design, Idempotency). A twin that lost the race must replay the burn that won,
    not be refused for the points that burn spent."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "seed", points=100)

    outcomes = run_together(16, lambda i: network.burn(partner, member, "till-7", 60,
                                                       idempotency_key=f"k{i}" if keys != "no key" else None))

    assert entries_of(network, kind="burn") == 1
    assert network.balance(member)["available"] == 40
    assert all(isinstance(o, dict) for o in outcomes), unexpected(outcomes)
    assert all(o == outcomes[0] for o in outcomes)
    verify_ok(network)


# -- one partner's traffic is not serialised ---------------------------------------------------


def test_32_threads_earning_for_different_members_of_one_partner_all_succeed(network, caplog):
    partner = make_partner(network)
    members = [make_member(network, partner) for _ in range(THREADS)]
    caplog.set_level("DEBUG", logger="pointsnet.db")

    outcomes = run_together(THREADS, lambda i: [network.earn(partner, members[i], f"e{i}-{n}", points=10 + n)
                                                for n in range(5)])

    errors = [o for o in outcomes if not isinstance(o, list)]
    assert not errors, errors
    assert all(network.balance(m)["available"] == 60 for m in members)
    assert entries_of(network, kind="earn") == THREADS * 5
    retries = [r for r in caplog.records if "retrying unit of work" in r.getMessage()]
    assert not retries, f"earns of different members conflicted: {[r.getMessage() for r in retries]}"
    verify_ok(network)


def test_an_open_unit_of_work_of_a_partner_does_not_block_its_other_members(network):
    """A slow transaction of one partner (earn and burn posted, not yet committed) must not lock the
    partner's traffic: an earn and a burn for other members of the same partner commit meanwhile."""
    partner = make_partner(network)
    slow, fast, spender = (make_member(network, partner) for _ in range(3))
    network.earn(partner, slow, "slow-seed", points=100)
    network.earn(partner, spender, "spender-seed", points=100)
    posted, release = threading.Event(), threading.Event()

    def slow_unit(tx):
        outcomes = post_events(tx, partner, [Event("earn", "slow-earn", slow, 10), Event("burn", "slow-burn", slow, 5)])
        assert all(isinstance(o, dict) for o in outcomes), outcomes
        posted.set()
        assert release.wait(30)
        return outcomes

    with ThreadPoolExecutor(3) as pool:
        held_open = pool.submit(network.tx, slow_unit)
        try:
            assert posted.wait(10)
            earn = pool.submit(network.earn, partner, fast, "fast-earn", points=7)
            burn = pool.submit(network.burn, partner, spender, "fast-burn", 3)
            try:
                assert earn.result(timeout=5)["balance"]["available"] == 7
                assert burn.result(timeout=5)["balance"]["available"] == 97
            except FutureTimeout:
                pytest.fail("an open transaction of the partner blocks its other members' earns and burns")
        finally:
            release.set()
        held_open.result(timeout=30)
    assert network.balance(slow)["available"] == 105
    verify_ok(network)


# -- no entry commits into a closed cycle -------------------------------------------------------


def test_writers_racing_the_close_of_the_current_cycle_commit_before_it_or_are_refused(network, clock):
    clock.set(datetime(2026, 11, 20, 15, 30, tzinfo=timezone.utc))  # 23:30 in Asia/Shanghai
    cycle = cycle_date_for(clock.now(), network.settings)
    assert cycle == date(2026, 11, 20)
    partner = make_partner(network)
    writers, rounds, close_in_round = 24, 10, 3
    members = [make_member(network, partner) for _ in range(writers)]
    for n, member in enumerate(members):
        network.earn(partner, member, f"seed-{n}", points=10_000)
    # Writers go in rounds, all at once within a round; the closer fires during a round. (Share
    # lockers that never pause would starve FOR UPDATE: the gap between rounds lets the close in.)
    start_round = threading.Barrier(writers)
    closing = threading.Event()

    def write(i, n):
        member, ref = members[i], f"w{i}-{n}"
        match n % 4:
            case 0:
                return network.earn(partner, member, ref, points=5)
            case 1:
                return network.burn(partner, member, ref, 3)
            case 2:
                return network.hold(partner, member, ref, 2)
            case _:
                return network.grant_bonus(member, 1, reason="race", partner_id=partner, reference=ref)

    def writer(i):
        done, refused_in = [], None
        for n in range(rounds):
            start_round.wait(timeout=60)
            if i == 0 and n == close_in_round:
                closing.set()
            if refused_in is None:
                try:
                    done.append(write(i, n))
                except CycleClosed:
                    refused_in = n
        return done, refused_in

    def closer():
        assert closing.wait(60)

        def unit(tx):
            closed = close_cycle(tx, cycle)
            # Inside the closing transaction, the cycle row ours FOR UPDATE: what is in the cycle is final.
            frozen = tx.session.execute(select(func.count()).select_from(Entry)
                                        .where(Entry.cycle_date == cycle)).scalar_one()
            lines = tx.session.execute(select(func.count()).select_from(ObligationLine)
                                       .where(ObligationLine.cycle_date == cycle)).scalar_one()
            time.sleep(0.2)  # a slow close: writers arriving now must wait for it, then be refused
            return closed, frozen, lines

        return network.tx(unit)

    before = entries_of(network, cycle_date=cycle)
    outcomes = run_together(writers + 1, lambda i: closer() if i == writers else writer(i))

    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert not errors, errors
    closed, frozen, frozen_lines = outcomes[writers]
    assert closed
    assert entries_of(network, cycle_date=cycle) == frozen, "entries committed into the cycle after it closed"
    assert count(network, select(func.count()).select_from(ObligationLine)
                 .where(ObligationLine.cycle_date == cycle)) == frozen_lines
    results = [r for done, _ in outcomes[:writers] for r in done]
    assert all(r.get("cycle_date", cycle.isoformat()) == cycle.isoformat() for r in results)
    assert frozen == before + len(results)  # every write that succeeded is in the cycle, and nothing else
    refused_in = [n for _, n in outcomes[:writers]]
    assert None not in refused_in, "a writer kept committing into the cycle after it closed"
    assert len(results) >= writers * close_in_round  # the rounds before the close all committed
    # after the close, every kind of writer into this cycle is refused, the jobs included
    open_hold = next(r["hold_id"] for r in results if r["kind"] == "hold")
    late = [lambda: network.earn(partner, members[0], "late-earn", points=1),
            lambda: network.burn(partner, members[0], "late-burn", 1),
            lambda: network.hold(partner, members[0], "late-hold", 1),
            lambda: network.void(partner, open_hold),
            lambda: network.grant_bonus(members[0], 1, reason="late"),
            lambda: (clock.advance(minutes=network.settings.hold_timeout_minutes + 1), network.expire_holds())]
    for attempt in late:
        with pytest.raises(CycleClosed):
            attempt()
    assert cycle_date_for(clock.now(), network.settings) == cycle
    assert entries_of(network, cycle_date=cycle) == frozen
    verify_ok(network)
