"""GET /v1/transactions names the hold of every entry about one: the hold itself, its capture, its
void and its timeout (``hold_expiry``), whether the job or a spend that needed the points released it.
A capture without a reference and a timeout carry no reference, so without ``hold_id`` a partner
syncing from this list could not tell which hold they resolved."""

from __future__ import annotations

from services.partner_api.app import create_app
from tests.partner_api.conftest import enrol


def by_kind(feed: list[dict], kind: str) -> list[dict]:
    return [row for row in feed if row["kind"] == kind]


def test_each_entry_about_a_hold_names_it(shop, network, clock):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    timed_out = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h1", "points": 60})["hold_id"]
    captured = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h2", "points": 10})["hold_id"]
    voided = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h3", "points": 5})["hold_id"]
    shop.ok("POST", f"/v1/holds/{captured}/capture", {})  # no reference: the guide makes it optional
    shop.ok("POST", f"/v1/holds/{voided}/void", {})
    clock.advance(minutes=16)
    assert network.expire_holds() == 1
    feed = shop.ok("GET", "/v1/transactions")["transactions"]
    assert [(row["reference"], row["hold_id"]) for row in by_kind(feed, "hold")] == [
        ("h1", timed_out), ("h2", captured), ("h3", voided)]
    [capture] = by_kind(feed, "capture")
    [void] = by_kind(feed, "void")
    [expiry] = by_kind(feed, "hold_expiry")
    assert (capture["reference"], capture["hold_id"]) == (None, captured)
    assert (void["reference"], void["hold_id"]) == (None, voided)
    assert (expiry["reference"], expiry["hold_id"], expiry["points"]) == (None, timed_out, 60)
    assert [row["hold_id"] for row in by_kind(feed, "earn")] == [None]


def test_a_hold_released_by_a_spend_that_needed_its_points_is_named_in_the_holders_feed(partners, network, clock):
    """A burn at another partner that falls short releases the timed-out hold before the job does
    (docs/ledger.md decision 7): the ``hold_expiry`` entry is the holding partner's, and names its hold."""
    shop, other = partners("Shop"), partners("Other")
    member = enrol(shop)
    token = shop.ok("POST", f"/v1/members/{member}/link-tokens", {})["link_token"]
    other.ok("POST", "/v1/members", {"link_token": token})
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    hold = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h1", "points": 80})["hold_id"]
    clock.advance(minutes=16)
    other.ok("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 90})
    [expiry] = by_kind(shop.ok("GET", "/v1/transactions")["transactions"], "hold_expiry")
    assert (expiry["hold_id"], expiry["points"]) == (hold, 80)
    assert [row["hold_id"] for row in other.ok("GET", "/v1/transactions")["transactions"]] == [None]


def test_the_openapi_describes_hold_id_on_a_transaction():
    schema = create_app(None).openapi()["components"]["schemas"]["Transaction"]
    assert "hold_id" in schema["required"]
    field = schema["properties"]["hold_id"]
    assert {"type": "string"} in field["anyOf"] and {"type": "null"} in field["anyOf"]
    assert "capture" in field["description"] and "hold_expiry" in field["description"]
