"""The partner API shows the member's real tier, as a partner reads it (signed, over HTTP)."""

from tests.partner_api.conftest import api, enrol, partners, serve, shop  # noqa: F401 (fixtures)


def test_the_member_view_shows_the_tier(network, shop):  # noqa: F811
    member = enrol(shop)
    assert shop.ok("GET", f"/v1/members/{member}")["tier"] == "regular"
    network.earn(shop.partner_id, member, "big", points=600)
    assert shop.ok("GET", f"/v1/members/{member}")["tier"] == "gold"
