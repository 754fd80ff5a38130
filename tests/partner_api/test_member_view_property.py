"""Differential check of member_balance(apply_due=True) (shared/ledger/queries.py _due_applied):
the read-only view must equal the stored view once the hold-timeout and expiry jobs have run."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shared.config import Settings
from shared.errors import PointsnetError
from shared.ledger import queries
from shared.network import Network
from shared.programme.merge import merge_members
from tests.factories import make_member, make_partner

_n = itertools.count()


@pytest.fixture
def net(database_url, clock, tmp_path):
    n = Network(Settings(data_dir=Path(tmp_path) / "d", expiry_policy="days:2", return_grace_days=1,
                         hold_timeout_minutes=60), database_url=database_url, clock=clock, pool_size=10)
    yield n
    n.close()


def due_view(net, member):
    return net.tx(lambda tx: queries.member_balance(tx, member, apply_due=True, expiring_within_days=30),
                  readonly=True)


def stored_view(net, member):
    return net.tx(lambda tx: queries.member_balance(tx, member, expiring_within_days=30), readonly=True)


def project(view):
    return view["available"], view["held"], sorted((e["expires_at"], e["points"]) for e in view["expiring_soon"])


op = st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 100), st.booleans()),
    st.tuples(st.just("burn"), st.integers(1, 80), st.booleans()),
    st.tuples(st.just("hold"), st.integers(1, 80), st.booleans()),
    st.tuples(st.just("capture"), st.integers(0, 80), st.integers(0, 5)),
    st.tuples(st.just("void"), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("reverse"), st.integers(0, 5), st.integers(0, 40)),
    st.tuples(st.just("advance"), st.sampled_from([5, 30, 61, 600, 1440, 2879, 2881]), st.just(0)),
    st.tuples(st.just("merge"), st.just(0), st.just(0)),
    st.tuples(st.just("check"), st.just(0), st.just(0)),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=3, max_size=25))
def test_due_view_equals_the_view_after_the_jobs(net, clock, ops):
    k = next(_n)
    shop = make_partner(net, f"Shop {k}")
    main = make_member(net, shop)
    dup = make_member(net, shop)
    holds: list[str] = []
    spends: list[str] = []
    merged = False
    for i, (kind, a, b) in enumerate(ops):
        ref = f"x{k}-{i}"
        who = dup if (b is True and not merged) else main
        try:
            if kind == "earn":
                net.earn(shop, who, ref, points=a)
            elif kind == "burn":
                net.burn(shop, who, ref, a)
                spends.append(ref)
            elif kind == "hold":
                holds.append(net.hold(shop, who, ref, a)["hold_id"])
            elif kind == "capture" and holds:
                net.capture(shop, holds[b % len(holds)], a or None, reference=ref)
                spends.append(ref)
            elif kind == "void" and holds:
                net.void(shop, holds[a % len(holds)], reference=ref)
            elif kind == "reverse" and spends:
                net.reverse(shop, ref, spends[a % len(spends)], b or None)
            elif kind == "advance":
                clock.advance(minutes=a)
            elif kind == "merge" and not merged:
                net.tx(lambda tx: merge_members(tx, main, dup))
                merged = True
            elif kind == "check":
                before = project(due_view(net, main))
                net.expire_holds()
                net.expire_lots()
                assert project(stored_view(net, main)) == before, ops[: i + 1]
        except PointsnetError:
            pass
    before = project(due_view(net, main))
    net.expire_holds()
    net.expire_lots()
    assert project(stored_view(net, main)) == before, ops

