"""The member.merged webhook and the merge's answer give the survivor's balance as a spend then would
find it, as every other answer does (docs/ledger.md, decision 6): the duplicate's lots past their expiry
count as expired though no job has run (found in review of 2745789)."""

from __future__ import annotations

from shared.programme.merge import merge_members
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import register
from tests.webhooks.test_payload_balance_now import now_view, payloads


def test_member_merged_webhook_balance_is_as_a_spend_would_find(network, clock, receiver):
    shop = make_partner(network, "Coffee")
    register(network, receiver, shop)
    survivor = make_member(network, shop)
    duplicate = make_member(network, shop)
    network.earn(shop, duplicate, "d1", points=100)
    clock.advance(days=366)  # the duplicate's lot is past its expiry; the job has not run
    network.earn(shop, survivor, "s1", points=10)
    answer = network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    [sent] = payloads(network, "member.merged")
    assert now_view(network, survivor) == {"available": 10, "held": 0}
    assert sent["balance"] == now_view(network, survivor)  # webhook: 110 here
    assert answer["balance"] == now_view(network, survivor)
