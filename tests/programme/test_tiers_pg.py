"""Tiers under concurrent earns on PostgreSQL: qualifying points are read under the member's lock."""

import pytest
from sqlalchemy import select

from shared.models import MemberTierHistory
from shared.programme.tiers import current_tier
from tests.factories import make_member, make_partner, verify_ok
from tests.ledger.test_concurrency import run_together

pytestmark = pytest.mark.postgres


def test_racing_earns_upgrade_once_per_threshold(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    outcomes = run_together(12, lambda i: network.earn(partner, member, f"e-{i}", points=50))
    assert all(isinstance(o, dict) for o in outcomes)
    rows = network.tx(lambda tx: tx.session.execute(select(MemberTierHistory.from_tier, MemberTierHistory.to_tier,
                                                           MemberTierHistory.qualifying_points)
                                                    .where(MemberTierHistory.member_id == member)
                                                    .order_by(MemberTierHistory.at)).all(), readonly=True)
    assert sorted(tuple(r) for r in rows) == [("regular", "silver", 100), ("silver", "gold", 500)]
    assert network.tx(lambda tx: current_tier(tx, member), readonly=True) == "gold"
    verify_ok(network)
