"""Differential check: the balance every posting answers (and its webhooks carry) is the balance a spend
would find right after it — ``member_balance(apply_due=True)`` read once the unit has committed — whatever
mix of earns, burns, holds, captures, voids, reversals, batches and time (lots past expiry, holds past
their timeout, neither job run)."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, example, given, settings, strategies as st

from shared.errors import PointsnetError
from shared.ledger import queries
from shared.ledger.events import Event
from tests.factories import make_member, make_partner
from tests.partner_api.test_member_view_property import net  # noqa: F401  (the fixture: the same network)

_n = itertools.count()




def now_balance(net, member: str) -> dict:
    view = net.tx(lambda tx: queries.member_balance(tx, member, apply_due=True, expiring_within_days=0),
                  readonly=True)
    return {"available": view["available"], "held": view["held"]}


op = st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 100), st.integers(0, 5)),
    st.tuples(st.just("burn"), st.integers(1, 80), st.integers(0, 5)),
    st.tuples(st.just("hold"), st.integers(1, 80), st.integers(0, 5)),
    st.tuples(st.just("capture"), st.integers(0, 80), st.integers(0, 5)),
    st.tuples(st.just("void"), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("reverse"), st.integers(0, 9), st.integers(0, 40)),
    st.tuples(st.just("batch"), st.integers(1, 60), st.integers(0, 5)),
    st.tuples(st.just("advance"), st.sampled_from([5, 30, 61, 600, 1440, 2879, 2881]), st.just(0)),
    st.tuples(st.just("jobs"), st.just(0), st.just(0)),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=5, max_size=30))
@example(ops=[("earn", 100, 0), ("advance", 2881, 0), ("earn", 10, 0)])  # a lot past its expiry
@example(ops=[("earn", 100, 0), ("hold", 60, 0), ("advance", 61, 0), ("earn", 10, 0)])  # a hold past timeout
@example(ops=[("earn", 100, 0), ("hold", 60, 0), ("advance", 61, 0), ("burn", 10, 0), ("hold", 5, 0)])
@example(ops=[("earn", 100, 0), ("hold", 60, 0), ("advance", 30, 0), ("hold", 20, 0), ("advance", 31, 0),
              ("capture", 5, 1)])
@example(ops=[("earn", 100, 0), ("advance", 1440, 0), ("earn", 50, 0), ("burn", 30, 0), ("advance", 1441, 0),
              ("reverse", 1, 20)])
def test_every_answered_balance_is_the_balance_a_spend_would_find(net, clock, ops):
    k = next(_n)
    shop = make_partner(net, f"Shop {k}")
    member = make_member(net, shop)
    holds: list[str] = []
    originals: list[str] = []
    for i, (kind, a, b) in enumerate(ops):
        ref = f"x{k}-{i}"
        try:
            if kind == "earn":
                answer = net.earn(shop, member, ref, points=a)
                originals.append(ref)
            elif kind == "burn":
                answer = net.burn(shop, member, ref, a)
                originals.append(ref)
            elif kind == "hold":
                answer = net.hold(shop, member, ref, a)
                holds.append(answer["hold_id"])
            elif kind == "capture" and holds:
                answer = net.capture(shop, holds[b % len(holds)], a or None, reference=ref)
                originals.append(ref)
            elif kind == "void" and holds:
                answer = net.void(shop, holds[a % len(holds)], reference=ref)
            elif kind == "reverse" and originals:
                answer = net.reverse(shop, ref, originals[a % len(originals)], b or None)
            elif kind == "batch":  # an earn, a burn and another earn of the member in one unit
                outcomes = net.post(shop, [Event("earn", f"{ref}a", member, a), Event("burn", f"{ref}b", member, a + b),
                                           Event("earn", f"{ref}c", member, b + 1)])
                answers = [o for o in outcomes if not isinstance(o, PointsnetError)]
                answer = answers[-1]  # the last one answers the balance the unit leaves
                originals.extend(o["reference"] for o in answers if o["kind"] in ("earn", "burn"))
            elif kind == "advance":
                clock.advance(minutes=a)
                continue
            elif kind == "jobs":
                net.expire_holds()
                net.expire_lots()
                continue
            else:
                continue
        except PointsnetError:
            continue
        assert answer["balance"] == now_balance(net, member), ops[: i + 1]
