"""Report figures roll forward (outstanding(d) = outstanding(d-1) + figures(d)) and the roll-up and
direct paths agree, over random histories with debit/credit adjustments, holds timing out, reversal
grace, merges and erasure."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shared.config import Settings
from shared.errors import PointsnetError
from shared.ledger.adjustments import adjust_member
from shared.ledger.cycles import cycle_date_for
from shared.network import Network
from shared.programme.merge import merge_members
from shared.reports.network import network_report
from shared.reports.partner import partner_report
from shared.reports.period import Period
from tests.factories import make_member, make_partner, verify_ok

_n = itertools.count()
TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
PREPAID = TERMS | {"billing": "prepaid", "breakage_share": "0.2"}


@pytest.fixture
def net(database_url, clock, tmp_path):
    n = Network(Settings(data_dir=Path(tmp_path) / "d", expiry_policy="days:2", return_grace_days=1,
                         hold_timeout_minutes=60), database_url=database_url, clock=clock, pool_size=10)
    yield n
    n.close()


op = st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 100), st.integers(0, 1), st.integers(0, 1)),
    st.tuples(st.just("burn"), st.integers(1, 80), st.integers(0, 1), st.integers(0, 1)),
    st.tuples(st.just("hold"), st.integers(1, 80), st.integers(0, 1), st.integers(0, 1)),
    st.tuples(st.just("capture"), st.integers(0, 80), st.integers(0, 5), st.integers(0, 1)),
    st.tuples(st.just("reverse"), st.integers(0, 5), st.integers(0, 40), st.integers(0, 1)),
    st.tuples(st.just("adjust"), st.integers(-80, 80), st.integers(0, 1), st.integers(0, 1)),
    st.tuples(st.just("advance"), st.sampled_from([30, 61, 600, 1440, 2881]), st.just(0), st.just(0)),
    st.tuples(st.just("merge"), st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("expire"), st.just(0), st.just(0), st.just(0)),
)


def roll(points):
    return (points["issued"] - points["issue_reversed"] - points["redeemed_here_own_points"]
            - points["redeemed_elsewhere"] - points["expired"])


def nroll(totals):
    return totals["issued"] - totals["issue_reversed"] - totals["redeemed"] - totals["expired"]


@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=3, max_size=20), erase=st.booleans())
def test_roll_forward(net, clock, ops, erase):
    k = next(_n)
    parts = [make_partner(net, f"Post {k}", **TERMS), make_partner(net, f"Pre {k}", **PREPAID)]
    main = make_member(net, parts[0], also_linked_to=(parts[1],))
    dup = make_member(net, parts[1], also_linked_to=(parts[0],))
    start = cycle_date_for(clock.now(), net.settings)
    holds, spends, merged = [], [], False
    for i, (kind, a, b, c) in enumerate(ops):
        ref = f"r{k}-{i}"
        shop = parts[c]
        who = dup if (b and not merged) else main
        try:
            if kind == "earn":
                net.earn(shop, who, ref, points=a)
                spends.append((shop, ref))
            elif kind == "burn":
                net.burn(shop, who, ref, a)
                spends.append((shop, ref))
            elif kind == "hold":
                holds.append((shop, net.hold(shop, who, ref, a)["hold_id"]))
            elif kind == "capture" and holds:
                p, h = holds[b % len(holds)]
                net.capture(p, h, a or None, reference=ref)
                spends.append((p, ref))
            elif kind == "reverse" and spends:
                p, orig = spends[a % len(spends)]
                net.reverse(p, ref, orig, b or None)
            elif kind == "adjust" and a:
                net.tx(lambda tx: adjust_member(tx, who, a, reason="x", request_key=ref))
            elif kind == "advance":
                clock.advance(minutes=a)
            elif kind == "merge" and not merged:
                net.tx(lambda tx: merge_members(tx, main, dup))
                merged = True
            elif kind == "expire":
                net.expire_holds()
                net.expire_lots()
        except PointsnetError:
            pass
    if erase:
        clock.advance(minutes=61)
        try:
            net.erase_member(main)
        except PointsnetError:
            pass
    end = cycle_date_for(clock.now(), net.settings)
    clock.advance(days=1, hours=1)
    day = start
    while day <= end:
        net.settle(day)
        day += timedelta(days=1)
    verify_ok(net)

    def check(tx):
        day = start
        while day <= end:
            prev, this = Period(day - timedelta(days=1), day - timedelta(days=1)), Period(day, day)
            for p in parts:
                r = partner_report(tx, p, this, rollup=True)
                assert r == partner_report(tx, p, this, rollup=False)
                before = partner_report(tx, p, prev, rollup=False)["liability"]["outstanding_points"]
                assert r["liability"]["outstanding_points"] == before + roll(r["points"]), (p, day, r["points"])
            n = network_report(tx, this, rollup=True)
            assert n["totals"] == network_report(tx, this, rollup=False)["totals"]
            before = network_report(tx, prev, rollup=False)["liability"]["outstanding_points"]
            assert n["liability"]["outstanding_points"] == before + nroll(n["totals"]), (day, n["totals"])
            day += timedelta(days=1)
    net.tx(check, readonly=True)
