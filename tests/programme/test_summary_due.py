"""The operator's view of a member (dashboard member page, `pointsnet members show`) gives the balance as
the partner API does: as a spend now would find it.

Until 2026-12-06 it gave the stored balance: after a hold's timeout, before the hold-timeout job ran, the
held points still showed as held; after a lot's expiry, before the expiry job ran (or while the worker was
down), its points showed as available and under "expiring soon" with a date already past, while the
partner API's GET /v1/members/{id} answered otherwise (found reviewing holds).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.ledger.queries import member_balance
from shared.programme.summary import member_summary
from tests.factories import make_member, make_partner


def _views(network, member):
    summary = network.tx(lambda tx: member_summary(tx, member), readonly=True)
    api = network.tx(lambda tx: member_balance(tx, member, apply_due=True), readonly=True)
    return summary, api


def test_a_timed_out_hold_shows_released_before_the_job_runs(network, clock):
    shop = make_partner(network, "Till")
    member = make_member(network, shop)
    network.earn(shop, member, "e-1", points=100)
    network.hold(shop, member, "h-1", 60)
    clock.advance(minutes=16)
    summary, api = _views(network, member)
    assert summary["balance"] == {"available": 100, "held": 0}
    assert summary["balance"] == {"available": api["available"], "held": api["held"]}


def test_expired_points_are_gone_and_not_listed_as_expiring(network, clock):
    shop = make_partner(network, "Till")
    member = make_member(network, shop)
    network.earn(shop, member, "e-1", points=100)
    lot_expiry = datetime.fromisoformat(
        network.tx(lambda tx: member_balance(tx, member, expiring_within_days=100_000), readonly=True)
        ["expiring_soon"][0]["expires_at"])
    clock.set(lot_expiry - timedelta(minutes=5))
    network.hold(shop, member, "h-1", 60)
    clock.advance(minutes=10)  # past the lot's expiry, within the hold's timeout; the expiry job has not run
    summary, api = _views(network, member)
    assert summary["balance"] == {"available": 0, "held": 60}
    assert summary["expiring_soon"] == api["expiring_soon"] == []
