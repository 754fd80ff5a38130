"""Erasure of a member whose timed-out hold reserved prepaid points past their expiry, in a lot a
reversal gave grace (release_hold forfeits those points, then erasure forfeits the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from shared.config import Settings
from shared.models import Entry
from shared.network import Network
from shared.programme.merge import merge_members
from tests.factories import make_member, make_partner, verify_ok
from tests.ledger.test_operations import account, lines_of

DAYS = 40


@pytest.fixture
def net(database_url, clock, tmp_path):
    n = Network(Settings(data_dir=Path(tmp_path) / "d", expiry_policy=f"days:{DAYS}",
                         webhook_allow_private_targets=True), database_url=database_url, clock=clock, pool_size=10)
    yield n
    n.close()


def _expiry_entries(net, member):
    return net.tx(lambda tx: tx.session.execute(select(Entry.id, Entry.points).where(
        Entry.member_id == member, Entry.kind == "expiry")).all(), readonly=True)


@pytest.mark.parametrize("merged", [False, True])
def test_erasure_after_grace_and_timed_out_hold_prepaid(net, clock, merged):
    pre = make_partner(net, "Prepaid", billing="prepaid", point_value="1", breakage_share="0.2")
    shop = make_partner(net, "Shop")
    member = make_member(net, pre, also_linked_to=(shop,))
    holder = member
    if merged:
        holder = make_member(net, pre, also_linked_to=(shop,))
    net.earn(pre, holder, "e1", points=100)
    net.burn(shop, holder, "b1", 30)
    clock.advance(days=DAYS, minutes=-5)
    net.hold(shop, holder, "h1", 70)
    if merged:
        net.tx(lambda tx: merge_members(tx, member, holder))
    clock.advance(minutes=6)
    net.reverse(shop, "r1", "b1")  # 30 back into the expired lot, with grace
    clock.advance(minutes=20)  # hold timed out
    assert net.balance(member)["available"] == 30
    record = net.erase_member(member)
    verify_ok(net)
    assert account(net, "network:expired") == 100
    entries = _expiry_entries(net, member) + (_expiry_entries(net, holder) if merged else [])
    assert sum(points for _, points in entries) == 100
    refunds = [line for eid, _ in entries for line in lines_of(net, eid)]
    assert sum(line[3] for line in refunds if line[2] == "breakage_refund") == 100
    assert record["points_forfeited"] in (30, 100)
