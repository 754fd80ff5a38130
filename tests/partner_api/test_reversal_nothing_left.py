"""A reversal of a burn or capture of which nothing is left to return says so (409 reversal_exceeds_remaining,
`remaining` 0); until 2026-12-06 a reversal without `points` then read "only 0 points ... can still be
returned; 0 asked". An earn reversed in full likewise, under the code the design gives every over-reversal of
an earn (409 points_already_spent, `remaining` 0); until 2026-12-07 it read "... neither spent nor held; 0
cannot be reversed", as if the points were spent."""

from __future__ import annotations

import pytest

from tests.partner_api.conftest import assert_problem, enrol, entry_count


@pytest.fixture
def member(shop) -> str:
    member_id = enrol(shop, phone="+8613855550003")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 100})
    return member_id


def test_a_capture_returned_in_full_has_nothing_left_to_return(shop, member, network):
    hold = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h-1", "points": 30})["hold_id"]
    shop.ok("POST", f"/v1/holds/{hold}/capture", {"reference": "cap-1"})
    shop.ok("POST", "/v1/reversals", {"reference": "r-1", "original_reference": "cap-1"})
    before = entry_count(network)
    problem = assert_problem(shop.call("POST", "/v1/reversals", {"reference": "r-2", "original_reference": "cap-1"}),
                             409, "reversal_exceeds_remaining")
    assert problem["detail"] == "nothing of this capture is left to return", problem
    assert problem["remaining"] == 0
    assert entry_count(network) == before


def test_a_burn_returned_in_full_refuses_explicit_points_too(shop, member):
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b-1", "points": 20})
    shop.ok("POST", "/v1/reversals", {"reference": "r-1", "original_reference": "b-1", "points": 20})
    problem = assert_problem(shop.call("POST", "/v1/reversals", {"reference": "r-2", "original_reference": "b-1",
                                                                 "points": 5}), 409, "reversal_exceeds_remaining")
    assert problem["detail"] == "nothing of this burn is left to return; 5 asked", problem
    assert problem["remaining"] == 0


def test_a_partly_returned_burn_still_says_how_much_is_left(shop, member):
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b-1", "points": 20})
    shop.ok("POST", "/v1/reversals", {"reference": "r-1", "original_reference": "b-1", "points": 15})
    problem = assert_problem(shop.call("POST", "/v1/reversals", {"reference": "r-2", "original_reference": "b-1",
                                                                 "points": 6}), 409, "reversal_exceeds_remaining")
    assert problem["detail"] == "only 5 points of this burn can still be returned; 6 asked", problem
    assert problem["remaining"] == 5


@pytest.mark.parametrize("asked", [None, 5])
def test_an_earn_reversed_in_full_says_so(shop, member, network, asked):
    shop.ok("POST", "/v1/reversals", {"reference": "r-1", "original_reference": "seed"})
    before = entry_count(network)
    body = {"reference": "r-2", "original_reference": "seed", **({"points": asked} if asked else {})}
    problem = assert_problem(shop.call("POST", "/v1/reversals", body), 409, "points_already_spent")
    assert problem["detail"] == ("all 100 points of this earn were reversed already; nothing is left to reverse"
                                 + (f", {asked} asked" if asked else "")), problem
    assert (problem["remaining"], problem["held"]) == (0, 0)
    assert entry_count(network) == before


def test_an_earn_partly_spent_still_says_what_remains(shop, member):
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b-1", "points": 70})
    shop.ok("POST", "/v1/reversals", {"reference": "r-1", "original_reference": "seed", "points": 10})
    problem = assert_problem(shop.call("POST", "/v1/reversals", {"reference": "r-2", "original_reference": "seed"}),
                             409, "points_already_spent")
    assert problem["remaining"] == 20 and "only 20 points of this earn remain" in problem["detail"], problem
