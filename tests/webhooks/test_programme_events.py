"""Programme events reach the member's linked partners as webhooks: tier.changed, points.expiring,
member.status_changed (written in the same transaction as the change)."""

from __future__ import annotations

from datetime import timedelta

from shared.programme import jobs as programme_jobs
from shared.webhooks.delivery import deliver_due
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import bodies, register


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
