"""The ledger-entries counter counts each committed entry once, by kind, and nothing of a unit
that rolls back."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from shared.ledger.events import Event
from shared.ledger.posting import post_events
from tests.factories import make_member, make_partner


def counted(kind: str) -> float:
    return REGISTRY.get_sample_value("pointsnet_ledger_entries_total", {"kind": kind}) or 0.0


def test_a_batch_counts_its_entries_by_kind(network):
    shop = make_partner(network)
    member = make_member(network, shop)
    earns, burns = counted("earn"), counted("burn")
    outcomes = network.post(shop, [Event("earn", f"e{n}", member, points=10) for n in range(3)]
                            + [Event("burn", "b1", member, points=5), Event("burn", "b2", member, points=10**9)])
    assert [isinstance(o, dict) for o in outcomes] == [True, True, True, True, False]
    assert counted("earn") - earns == 3 and counted("burn") - burns == 1


def test_a_unit_that_rolls_back_counts_nothing(network):
    shop = make_partner(network)
    member = make_member(network, shop)
    earns = counted("earn")

    def post_then_fail(tx):
        post_events(tx, shop, [Event("earn", "x1", member, points=10)])
        raise RuntimeError("after the journal flushed")

    with pytest.raises(RuntimeError):
        network.tx(post_then_fail)
    assert counted("earn") == earns
