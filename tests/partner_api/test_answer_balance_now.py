"""Every balance a success answers is the member's balance as a spend at that instant would find it, the
same as ``GET /v1/members/{id}`` shows right after (partner guide, section 5): points past their expiry
are gone and a hold past its timeout is released, though the expiry and hold-timeout jobs have not
recorded it yet. Nothing is written for it: the jobs, or the next spend, do (docs/ledger.md, decisions
6, 7 and 13)."""

from __future__ import annotations

import pytest

from tests.partner_api.conftest import Partner, enrol, entry_count
# the member view's network and shop (fixtures): lots expire DAYS after their earn
from tests.partner_api.test_member_view_now import DAYS, net, shop  # noqa: F401



@pytest.fixture
def books(net, serve):
    partner = Partner(net, serve(net), "Book Shop")
    yield partner
    partner.close()


def view(shop, member: str) -> dict:
    answer = shop.ok("GET", f"/v1/members/{member}")
    return answer["balance"]


def expired_lot(shop, clock, points: int = 100) -> str:
    """A member whose ``points`` are a minute past their expiry; the expiry job has not run."""
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "old", "points": points})
    clock.advance(days=DAYS, minutes=1)
    return member


def timed_out_hold(shop, clock) -> str:
    """Earned 100, 60 held by a hold past its timeout; the hold-timeout job has not run."""
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h1", "points": 60})
    clock.advance(minutes=16)
    return member


def test_an_earn_after_points_expired_answers_without_them(net, shop, clock):
    member = expired_lot(shop, clock)
    assert view(shop, member) == {"available": 0, "held": 0}
    entries = entry_count(net)
    earned = shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e2", "points": 10})
    assert earned["balance"] == {"available": 10, "held": 0}
    assert entry_count(net) == entries + 1  # the earn only: it expires nothing itself
    assert view(shop, member) == earned["balance"]
    # a replay answers the same
    assert shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e2", "points": 10})["balance"] == \
        earned["balance"]
    burnt = shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 10})
    assert burnt["balance"] == {"available": 0, "held": 0} == view(shop, member)


def test_an_earn_after_a_hold_timed_out_answers_it_released(net, shop, clock):
    member = timed_out_hold(shop, clock)
    earned = shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e2", "points": 10})
    assert earned["balance"] == {"available": 110, "held": 0} == view(shop, member)
    net.expire_holds()
    assert view(shop, member) == earned["balance"]


def test_a_burn_and_a_hold_that_need_no_timed_out_hold_answer_it_released(net, shop, clock):
    member = timed_out_hold(shop, clock)  # 40 free, 60 held by a hold past its timeout
    burnt = shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 10})
    assert burnt["balance"] == {"available": 90, "held": 0} == view(shop, member)
    held = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h2", "points": 10})
    assert held["balance"] == {"available": 80, "held": 10} == view(shop, member)


def test_a_capture_and_a_void_answer_another_timed_out_hold_released(net, shop, clock):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h1", "points": 60})
    clock.advance(minutes=10)
    second = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h2", "points": 20})["hold_id"]
    third = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h3", "points": 10})["hold_id"]
    clock.advance(minutes=6)  # h1 timed out, h2 and h3 still running
    captured = shop.ok("POST", f"/v1/holds/{second}/capture", {"points": 5})
    assert captured["balance"] == {"available": 85, "held": 10} == view(shop, member)
    voided = shop.ok("POST", f"/v1/holds/{third}/void", {})
    assert voided["balance"] == {"available": 95, "held": 0} == view(shop, member)


def test_reversals_answer_without_points_past_their_expiry(net, shop, clock):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "old", "points": 100})
    clock.advance(days=20)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e2", "points": 50})
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 30})  # from "old"
    clock.advance(days=20, minutes=1)  # "old" (70 left) is past its expiry
    reversed_earn = shop.ok("POST", "/v1/reversals", {"reference": "r1", "original_reference": "e2",
                                                       "points": 20})
    assert reversed_earn["balance"] == {"available": 30, "held": 0} == view(shop, member)


def test_batch_items_answer_as_a_spend_would_find_the_member(net, shop, clock):
    member = expired_lot(shop, clock)
    other = enrol(shop)
    answer = shop.ok("POST", "/v1/batch", {"events": [
        {"type": "earn", "member_id": member, "reference": "be1", "points": 10},
        {"type": "earn", "member_id": other, "reference": "be2", "points": 7},
        {"type": "burn", "member_id": member, "reference": "bb1", "points": 4},
        {"type": "earn", "member_id": member, "reference": "be3", "points": 1},
    ]})
    balances = [item["result"]["balance"] for item in answer["results"]]
    assert balances == [{"available": 10, "held": 0}, {"available": 7, "held": 0},
                        {"available": 6, "held": 0}, {"available": 7, "held": 0}]
    assert view(shop, member) == balances[-1]


def test_enrolling_again_and_linking_answer_the_balance_a_spend_would_find(net, shop, books, clock):
    member = enrol(shop, phone="+8613900000042")
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    clock.advance(days=DAYS, minutes=-5)
    shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h1", "points": 60})
    clock.advance(minutes=16)  # the lot is past its expiry and the hold past its timeout
    assert view(shop, member) == {"available": 0, "held": 0}
    again = shop.ok("POST", "/v1/members", {"phone": "+8613900000042"})
    assert again["member_id"] == member and again["balance"] == {"available": 0, "held": 0}
    token = shop.ok("POST", f"/v1/members/{member}/link-tokens", {})["link_token"]
    linked = books.ok("POST", "/v1/members", {"link_token": token})
    assert linked["member_id"] == member and linked["balance"] == {"available": 0, "held": 0}
