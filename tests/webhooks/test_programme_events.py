"""Programme events reach the member's linked partners as webhooks: tier.changed, points.expiring,
member.status_changed, member.merged, points.adjusted (written in the same transaction as the change)."""

from __future__ import annotations

import json
import re

import pytest

from shared.ledger.adjustments import adjust_member
from shared.programme import jobs as programme_jobs
from shared.programme.merge import merge_members
from shared.webhooks.delivery import deliver_due
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import bodies, deliveries, register, verify_v1, verify_v1a

UTC_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


def test_a_tier_upgrade_is_announced_to_every_linked_partner_and_no_other(network, clock, receiver):
    shop, cafe, stranger = (make_partner(network, name) for name in ("Shop", "Cafe", "Stranger"))
    for partner in (shop, cafe, stranger):
        register(network, receiver, partner)
    member = make_member(network, shop, also_linked_to=(cafe,))
    network.earn(shop, member, "big-1", points=1_000)  # the default ladder: silver at 1,000
    assert deliver_due(network)["delivered"] >= 3
    for partner in (shop, cafe):
        tiers = [b for b in bodies(receiver.at(f"/hooks/{partner}")) if b["type"] == "tier.changed"]
        assert [(t["data"]["member_id"], t["data"]["from_tier"], t["data"]["to_tier"]) for t in tiers] == \
            [(member, "regular", "silver")]
        assert UTC_Z.fullmatch(tiers[0]["data"]["at"]), tiers[0]["data"]["at"]  # as every webhook time
    assert receiver.at(f"/hooks/{stranger}") == []


def test_expiry_reminders_and_status_changes_are_announced(network, clock, receiver, settings):
    shop = make_partner(network)
    register(network, receiver, shop)
    member = make_member(network, shop)
    network.earn(shop, member, "e-1", points=300)
    deliver_due(network)
    clock.advance(days=365 - 29)  # inside 30 days before the 12-month expiry
    programme_jobs.remind_expiring(network)
    programme_jobs.recompute_statuses(network)
    deliver_due(network)
    received = [b for b in bodies(receiver.at(f"/hooks/{shop}")) if b["type"] != "points.earned"]
    kinds = {b["type"]: b["data"] for b in received}
    assert kinds["points.expiring"]["member_id"] == member and kinds["points.expiring"]["points"] == 300
    assert kinds["points.expiring"]["days_before"] == 30
    assert (kinds["member.status_changed"]["from_status"], kinds["member.status_changed"]["to_status"]) == \
        ("active", "dormant")
    # instants in UTC with Z, as the guide says of every webhook (they were written +00:00)
    for at in (kinds["points.expiring"]["first_expires_at"], kinds["member.status_changed"]["at"],
               kinds["member.status_changed"]["last_activity_at"]):
        assert UTC_Z.fullmatch(at), at
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", kinds["points.expiring"]["expires_on"])


def test_a_referral_bonus_names_who_funds_it(network, receiver):
    from shared.rules.store import set_rules

    shop = make_partner(network)
    register(network, receiver, shop)
    for phone, funded_by in (("+8613900003333", "partner"), ("+8613900004444", "network")):
        network.tx(lambda tx: set_rules(tx, shop, f"referral: {{bonus_points: 500, funded_by: {funded_by}}}\n"))
        referrer = make_member(network, shop)
        referee = network.enrol(shop, phone=phone, referrer_member_id=referrer)["member_id"]
        answer = network.earn(shop, referee, f"first-{funded_by}", points=10)["referral_bonus"]
        deliver_due(network)
        [bonus] = [b["data"] for b in bodies(receiver.at(f"/hooks/{shop}"))
                   if b["type"] == "points.earned" and b["data"]["member_id"] == referrer]
        # as the earn's answer says, and as its lot says (the partner's id, or "network")
        assert bonus["funded_by"] == answer["funded_by"] == funded_by
        assert bonus["lots"][0]["funded_by"] == (shop if funded_by == "partner" else "network")


# -- merges and operator adjustments ------------------------------------------------------------

def _merged(network, receiver):
    """A survivor linked to Shop and Both, a duplicate linked to Other and Both (50 points of it earned
    at Other, 20 of them held), and a Stranger linked to neither."""
    shop, other, both, stranger = (make_partner(network, name) for name in ("Shop", "Other", "Both", "Stranger"))
    endpoints = {partner: register(network, receiver, partner) for partner in (shop, other, both, stranger)}
    survivor = make_member(network, shop, also_linked_to=(both,))
    duplicate = make_member(network, other, also_linked_to=(both,))
    network.earn(other, duplicate, "dup-1", points=50)
    network.hold(other, duplicate, "dup-hold", 20)
    network.earn(shop, survivor, "surv-1", points=30)
    assert deliver_due(network)["delivered"] == 2  # the two earns
    receiver.requests.clear()
    merge = network.tx(lambda tx: merge_members(tx, survivor, duplicate, reason="same person"))
    return merge, {"shop": shop, "other": other, "both": both, "stranger": stranger}, endpoints


def test_a_merge_is_announced_signed_to_partners_linked_to_either_member(network, clock, receiver):
    merge, partners, endpoints = _merged(network, receiver)
    survivor, duplicate = merge["survivor_id"], merge["duplicate_id"]
    assert deliver_due(network)["delivered"] == 3
    for name in ("shop", "other", "both"):
        partner = partners[name]
        [request] = receiver.at(f"/hooks/{partner}")  # one event each, a partner linked to both included
        verify_v1(endpoints[partner]["secret"], request, clock.now())
        verify_v1a(network.signing_key.public_key(), request)
        [event] = bodies([request])
        assert event["type"] == "member.merged"
        assert event["data"] == {"member_id": survivor, "from": duplicate, "into": survivor,
                                 "merge_id": merge["id"], "points": 30, "held_points": 20,
                                 "balance": merge["balance"], "merged_at": event["timestamp"]}
    assert receiver.at(f"/hooks/{partners['stranger']}") == []


def test_a_merge_announcement_commits_with_the_merge_or_not_at_all(network, receiver):
    shop = make_partner(network)
    register(network, receiver, shop)
    survivor, duplicate = make_member(network, shop), make_member(network, shop)
    assert deliver_due(network)["delivered"] == 0
    with pytest.raises(RuntimeError):
        network.tx(lambda tx: (merge_members(tx, survivor, duplicate), _fail()))
    assert deliveries(network) == []
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    assert [row.event_type for row in deliveries(network)] == ["member.merged"]


def _fail():
    raise RuntimeError("the unit fails after the merge")


def test_an_operators_adjustment_is_announced_to_the_members_partners(network, clock, receiver):
    shop, cafe, stranger = (make_partner(network, name) for name in ("Shop", "Cafe", "Stranger"))
    for partner in (shop, cafe, stranger):
        register(network, receiver, partner)
    member = make_member(network, shop, also_linked_to=(cafe,))
    network.earn(shop, member, "e1", points=100)
    assert deliver_due(network)["delivered"] == 1
    receiver.requests.clear()
    added = network.tx(lambda tx: adjust_member(tx, member, 40, reason="goodwill after a complaint",
                                                request_key="form-1"))
    taken = network.tx(lambda tx: adjust_member(tx, member, -25, reason="duplicate earn", request_key="form-2"))
    assert deliver_due(network)["delivered"] == 4
    for partner in (shop, cafe):
        events = bodies(receiver.at(f"/hooks/{partner}"))
        assert [e["type"] for e in events] == ["points.adjusted", "points.adjusted"]
        credit, debit = (e["data"] for e in events)
        [lot] = added["lots"]
        assert credit == {"transaction_id": added["entry_id"], "member_id": member, "points": 40,
                          "balance": {"available": 140, "held": 0}, "posted_at": credit["posted_at"],
                          "lots": [{"lot_id": lot["lot_id"], "points": 40,
                                    "expires_at": lot["expires_at"].replace("+00:00", "Z"), "funded_by": "network"}]}
        assert debit == {"transaction_id": taken["entry_id"], "member_id": member, "points": -25,
                         "balance": {"available": 115, "held": 0},
                         "posted_at": debit["posted_at"]}
        assert "complaint" not in json.dumps(events)  # the operator's reason is not the partners' to read
    assert receiver.at(f"/hooks/{stranger}") == []
