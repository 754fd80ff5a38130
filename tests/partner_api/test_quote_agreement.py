"""Over HTTP, `POST /v1/earn/quote` refuses what `POST /v1/earn` refuses, with the same problem: items
adding up to more than the amount (422 `invalid_amount`, not stored for the Idempotency-Key; in a
batch, at that event's index), an erased member (409 `member_erased`), an earn over the member's daily
limit (422 `velocity_limit_exceeded`) and a purchase that earns nothing (422 `nothing_to_earn`); the
OpenAPI document lists the codes the last test names for the quote."""

from __future__ import annotations

import pytest

from shared.rules.store import set_rules
from tests.partner_api.conftest import assert_problem, enrol, entry_count

INFLATED = {"amount": 1_000, "items": [{"sku": "B", "category": "books", "amount": 100_000}]}


@pytest.fixture
def member(shop) -> str:
    return enrol(shop, phone="+8613812345678")


@pytest.mark.parametrize("path", ["/v1/earn", "/v1/earn/quote"])
def test_items_adding_up_to_more_than_the_amount_are_invalid_amount(shop, member, network, path):
    before = entry_count(network)
    problem = assert_problem(shop.call("POST", path, {"member_id": member, "reference": "o-1", **INFLATED},
                                       idempotency_key="K-1"), 422, "invalid_amount")
    assert "100000" in problem["detail"]
    assert entry_count(network) == before
    # a validation failure is not stored for its key: the corrected request with the same key goes through
    fixed = {"member_id": member, "reference": "o-1", "amount": 100_000, "items": INFLATED["items"]}
    answer = shop.ok("POST", path, fixed, idempotency_key="K-1")
    assert answer["points"] == 1_000  # 1,000.00 at the contract's 1 point per yuan


def test_in_a_batch_the_earn_with_inflated_items_is_refused_at_its_index(shop, member, network):
    answer = shop.ok("POST", "/v1/batch", {"events": [
        {"type": "earn", "reference": "b-1", "member_id": member, "amount": 10_000},
        {"type": "earn", "reference": "b-2", "member_id": member, **INFLATED},
        {"type": "earn", "reference": "b-3", "member_id": member, "amount": 100_000, "items": INFLATED["items"]}]})
    assert [r["status"] for r in answer["results"]] == [200, 422, 200]
    assert answer["results"][1]["problem"]["code"] == "invalid_amount"
    assert [r["result"]["points"] for r in answer["results"] if r.get("result")] == [100, 1_000]


def test_a_quote_for_an_erased_member_is_refused_as_its_earn_is(shop, member, network):
    network.erase_member(member)
    body = {"member_id": member, "reference": "o-2", "amount": 10_000}
    assert_problem(shop.call("POST", "/v1/earn", body), 409, "member_erased")
    assert_problem(shop.call("POST", "/v1/earn/quote", body), 409, "member_erased")


def test_the_quote_documents_the_refusals_it_shares_with_the_earn(shop):
    answers = shop.http.get("/openapi.json").json()["paths"]["/v1/earn/quote"]["post"]["responses"]
    documented = " ".join(answer.get("description", "") for answer in answers.values())
    for code in ("unknown_member", "member_erased", "invalid_amount", "invalid_points", "occurred_at_out_of_range",
                 "partner_suspended", "partner_terminated", "nothing_to_earn", "velocity_limit_exceeded",
                 "float_exhausted", "reference_conflict"):
        assert f"`{code}`" in documented, code


def test_a_quote_over_the_members_daily_limit_is_refused_as_its_earn_is(shop, member, network):
    """Over HTTP a quote over the member's daily earn limit is 422 `velocity_limit_exceeded` with the
    earn's figures (the same limit, used and remaining), not stored for its Idempotency-Key (a quote
    writes nothing), and one within it answers the points."""
    network.tx(lambda tx: set_rules(tx, "network", "limits:\n  member_daily_earn: 100\n"))
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "o-1", "points": 60})
    over = {"member_id": member, "reference": "o-2", "points": 41}
    quote = assert_problem(shop.call("POST", "/v1/earn/quote", over, idempotency_key="Q-1"), 422,
                           "velocity_limit_exceeded")
    earn = assert_problem(shop.call("POST", "/v1/earn", over), 422, "velocity_limit_exceeded")
    figures = ("limit_name", "limit", "used", "remaining", "business_day", "detail")
    assert [quote[name] for name in figures] == [earn[name] for name in figures]
    assert (quote["limit_name"], quote["used"], quote["remaining"]) == ("member_daily_earn", 60, 40)
    assert shop.ok("POST", "/v1/earn/quote", {**over, "points": 40}, idempotency_key="Q-1")["points"] == 40


def test_a_quote_for_a_purchase_that_earns_nothing_is_refused_as_its_earn_is(shop, member, network):
    """Under rules that give a purchase no points the quote is 422 `nothing_to_earn`, as the earn is,
    with the same breakdown; nothing is posted."""
    network.tx(lambda tx: set_rules(tx, shop.partner_id, "base_rate: 0"))
    before = entry_count(network)
    body = {"member_id": member, "reference": "o-3", "amount": 10_000}
    quote = assert_problem(shop.call("POST", "/v1/earn/quote", body), 422, "nothing_to_earn")
    earn = assert_problem(shop.call("POST", "/v1/earn", body), 422, "nothing_to_earn")
    assert quote["breakdown"] == earn["breakdown"] and quote["detail"] == earn["detail"]
    assert entry_count(network) == before


def test_a_quote_whose_reference_was_used_for_another_purchase_is_refused_as_its_earn_is(shop, member, network):
    """docs 3 and 5: the earn of a body whose reference is already taken by different content is 409
    `reference_conflict`, so its quote is too, with the same `differs` (also for a reference a burn
    took); nothing is posted."""
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "order-1", "amount": 5_000})
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "pos-1", "points": 10})
    before = entry_count(network)
    for body in ({"member_id": member, "reference": "order-1", "amount": 9_900},
                 {"member_id": member, "reference": "pos-1", "points": 10}):
        earn = assert_problem(shop.call("POST", "/v1/earn", body), 409, "reference_conflict")
        quote = assert_problem(shop.call("POST", "/v1/earn/quote", body), 409, "reference_conflict")
        assert (quote["differs"], quote["reference"]) == (earn["differs"], earn["reference"]), (quote, earn)
    assert entry_count(network) == before


def test_a_quote_of_an_earn_already_posted_answers_what_that_earn_answers(shop, member, network):
    """A new key with a reference already used for the same content answers the original earn (docs 3),
    whatever the rules say now: its quote answers that earn's points, breakdown and rule versions."""
    body = {"member_id": member, "reference": "order-2", "amount": 5_000}
    earned = shop.ok("POST", "/v1/earn", body)
    network.tx(lambda tx: set_rules(tx, shop.partner_id, "base_rate: 3"))
    assert shop.ok("POST", "/v1/earn/quote", {**body, "reference": "order-3"})["points"] == 150  # the rules now
    before = entry_count(network)
    quote = shop.ok("POST", "/v1/earn/quote", body)
    again = shop.ok("POST", "/v1/earn", body)
    assert again["transaction_id"] == earned["transaction_id"] and again["points"] == earned["points"] == 50
    assert (quote["member_id"], quote["points"], quote["breakdown"]) == (member, 50, earned["breakdown"])
    assert quote["rules"] == earned["rules"] and quote["contract_version"] == 1
    explicit = {"member_id": member, "reference": "order-4", "points": 7}
    shop.ok("POST", "/v1/earn", explicit)
    assert shop.ok("POST", "/v1/earn/quote", explicit)["points"] == 7
    assert entry_count(network) == before + 1
