"""Operator adjustments racing partners' burns and each other on PostgreSQL: never below zero,
no lost update, one request key posts once."""

from __future__ import annotations

import pytest

from shared.errors import InsufficientPoints, ReferenceConflict
from shared.ledger.adjustments import adjust_member
from tests.factories import make_member, make_partner, verify_ok
from tests.ledger.test_concurrency_pg import entries_of, run_together, unexpected

pytestmark = pytest.mark.postgres


def adjust(network, member, points, key=None):
    return network.tx(lambda tx: adjust_member(tx, member, points, reason="race", request_key=key))


def test_negative_adjustments_racing_burns_take_exactly_what_the_member_has(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    for n in range(4):
        network.earn(partner, member, f"seed-{n}", points=250)
    threads, price = 32, 70

    def call(i):
        if i % 2:
            return adjust(network, member, -price)
        return network.burn(partner, member, f"burn-{i}", price)

    outcomes = run_together(threads, call)
    assert not unexpected(outcomes, InsufficientPoints)
    succeeded = [o for o in outcomes if isinstance(o, dict)]
    assert len(succeeded) == 1000 // price
    assert network.balance(member)["available"] == 1000 - price * len(succeeded)
    verify_ok(network)


def test_one_request_key_raced_posts_once(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    outcomes = run_together(16, lambda i: adjust(network, member, 40, key="form-1"))
    assert not unexpected(outcomes)
    assert len({o["entry_id"] for o in outcomes}) == 1
    assert network.balance(member)["available"] == 40 and entries_of(network, kind="adjustment") == 1
    verify_ok(network)


def test_one_request_key_raced_for_two_members_posts_once(network):
    partner = make_partner(network)
    members = [make_member(network, partner) for _ in range(2)]
    outcomes = run_together(16, lambda i: adjust(network, members[i % 2], 40, key="form-2"))
    assert not unexpected(outcomes, ReferenceConflict)
    assert len({o["entry_id"] for o in outcomes if isinstance(o, dict)}) == 1
    assert entries_of(network, kind="adjustment") == 1
    assert sum(network.balance(m)["available"] for m in members) == 40
    verify_ok(network)
