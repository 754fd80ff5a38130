"""GET /v1/members/{id} answers the member's points as the ledger holds them at that instant: a hold past
its timeout is the member's again and points past their expiry are gone, as a burn at that moment
treats them (docs/ledger.md decisions 6, 7 and 13), whether or not the hold-timeout and expiry jobs
have run yet. The read writes nothing: the jobs, or the next spend, do."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.partner_api.conftest import Partner, assert_problem, enrol, entry_count

DAYS = 40  # lots expire 40 days after their earn


@pytest.fixture
def net(make_network):
    return make_network(expiry_policy=f"days:{DAYS}")


@pytest.fixture
def shop(net, serve):
    partner = Partner(net, serve(net), "Coffee Shop")
    yield partner
    partner.close()


def view(shop, member: str) -> dict:
    answer = shop.ok("GET", f"/v1/members/{member}")
    return {"available": answer["balance"]["available"], "held": answer["held"],
            "expiring_soon": answer["expiring_soon"]}


def after_the_jobs(net, shop, member: str, before: dict) -> None:
    """Once the jobs have run, the member's view is the one the read gave before them."""
    net.expire_holds()
    net.expire_lots()
    assert view(shop, member) == before


def test_a_hold_past_its_timeout_is_the_members_again(net, shop, clock):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h1", "points": 60})
    assert (view(shop, member)["available"], view(shop, member)["held"]) == (40, 60)
    clock.advance(minutes=16)
    entries = entry_count(net)
    now = view(shop, member)
    assert (now["available"], now["held"]) == (100, 0)
    assert entry_count(net) == entries  # read only: the hold is still open in the database
    after_the_jobs(net, shop, member, now)


def test_a_burn_of_what_the_view_shows_goes_through(net, shop, clock):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h1", "points": 60})
    clock.advance(minutes=16)
    shown = view(shop, member)["available"]
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": shown})
    after = view(shop, member)
    assert (after["available"], after["held"]) == (0, 0)  # nothing left that the view did not show


def test_points_past_their_expiry_are_neither_available_nor_expiring_soon(net, shop, clock):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    clock.advance(days=20)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e2", "points": 50})
    second_expiry = clock.now() + timedelta(days=DAYS)
    clock.advance(days=20, minutes=1)  # the first lot is a minute past its expiry
    entries = entry_count(net)
    now = view(shop, member)
    assert (now["available"], now["held"]) == (50, 0)
    [expiring] = now["expiring_soon"]  # not the lot that expired on first_expiry
    assert expiring["points"] == 50 and datetime.fromisoformat(expiring["expires_at"]) == second_expiry
    assert entry_count(net) == entries
    # as a burn at this moment sees it: the expired 100 are not spent
    assert_problem(shop.call("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 51}),
                   409, "insufficient_points")
    after_the_jobs(net, shop, member, now)


def test_a_timed_out_hold_on_points_past_their_expiry_releases_nothing_spendable(net, shop, clock):
    """The hold reserved points of a lot that expired while they were held: once the hold times out
    they expire at once (decision 13), so they come back neither as available nor as held."""
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    clock.advance(days=20)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e2", "points": 50})
    clock.advance(days=20, minutes=-5)  # five minutes before the first lot expires
    shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h1", "points": 60})
    clock.advance(minutes=10)  # the lot has expired; the hold still holds its 60 (no timeout yet)
    held = view(shop, member)
    assert (held["available"], held["held"]) == (50, 60)
    clock.advance(minutes=6)  # and now the hold has timed out
    now = view(shop, member)
    assert (now["available"], now["held"]) == (50, 0)
    assert [lot["points"] for lot in now["expiring_soon"]] == [50]
    after_the_jobs(net, shop, member, now)


def test_points_a_timed_out_hold_reserved_past_their_expiry_expire_though_a_reversal_gave_the_lot_grace(
        net, shop, clock):
    """A reversal into the lot after its expiry gives only the returned points the grace; the points
    the hold reserved keep the expiry they had when reserved, and expire when the hold times out."""
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 30})
    clock.advance(days=DAYS, minutes=-5)
    shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h1", "points": 70})
    clock.advance(minutes=6)  # the lot is past its expiry, its 70 held
    shop.ok("POST", "/v1/reversals", {"reference": "r1", "original_reference": "b1"})  # 30 back, with grace
    clock.advance(minutes=10)  # the hold timed out
    now = view(shop, member)
    assert (now["available"], now["held"]) == (30, 0)
    assert [lot["points"] for lot in now["expiring_soon"]] == [30]
    after_the_jobs(net, shop, member, now)


def test_a_hold_still_running_is_held_though_its_lot_expired(net, shop, clock):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    clock.advance(days=DAYS, minutes=-5)
    hold = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h1", "points": 60})["hold_id"]
    clock.advance(minutes=6)
    now = view(shop, member)
    assert now == {"available": 0, "held": 60, "expiring_soon": []}
    after_the_jobs(net, shop, member, now)
    assert shop.ok("POST", f"/v1/holds/{hold}/capture", {})["points"] == 60  # still capturable
